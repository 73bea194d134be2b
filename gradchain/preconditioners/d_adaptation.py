"""The pieces of D-Adaptation and Prodigy (``optimizers/d_adaptation.py``): their states and
the per-leaf passes that update Adam's moments and gather the estimate's reductions.

Both optimizers are Adam whose learning rate is an estimate ``d`` of the distance to the
solution, grown from below as the run goes (learning-rate free).

Each keeps Adam's two moments, a weighted sum of past steps ``s`` per parameter, and two scalars
of the whole tree: the estimate ``d`` (``estim_lr``) and a weighted sum of inner products
(``numerator_weighted``). The estimate needs two reductions over all leaves (an inner product
and ``Σ|s|``), ``psum``-ed over ``axis_name`` when the leaves are split across devices
(``gradchain/core/reductions.py``). ``learning_rate`` is a multiplier of ``d`` (1: none; the
authors recommend 1 with a warm-up and a decay to 0), evaluated at the number of earlier
updates; it enters the estimate too, so it is a hyperparameter of the step, not a stage after it.
Real leaves only (the estimate compares inner products).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.hyperparams import cast, compute_dtype
from gradchain.core.public import record_range
from gradchain.core.reductions import check_axis_name, sum_over_devices
from gradchain.core.validation import Range, check_range

REAL_ONLY = "the distance estimate d is a maximum of real inner products"


class DAdaptAdamWState(NamedTuple):
    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array
    hyperparams: dict


class ProdigyState(NamedTuple):
    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    params0: Any
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array
    hyperparams: dict


def check_betas(name, betas):
    """``betas = (β1, β2)``, each in [0, 1); stored as ``beta1``, ``beta2`` (the ranges are
    recorded under those names for ``set_hyperparams``)."""
    if not (isinstance(betas, tuple) and len(betas) == 2):
        raise TypeError(f"{name}: betas={betas!r} is not a pair (beta1, beta2)")
    for i, beta in enumerate(betas):
        check_range(name, f"betas[{i}]", beta, 0, 1, high_open=True, record=False)
        record_range(f"beta{i + 1}", Range(0, 1, high_open=True))


def check_common(name, learning_rate, eps, weight_decay, estim_lr0, axis_name):
    check_range(name, "learning_rate", learning_rate, 0)
    check_range(name, "eps", eps, 0)
    check_range(name, "weight_decay", weight_decay, 0)
    check_range(name, "estim_lr0", estim_lr0, 0, low_open=True)
    check_axis_name(name, axis_name)


def zero_statistics(params):
    """A statistic per leaf, in the leaf's compute dtype (at least float32: ``(d g)²`` with
    ``d ~ 1e-6`` underflows in float16, where Optax keeps it)."""
    return jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), compute_dtype(p.dtype)), params)


def step_correction(values, step):
    """Adam's corrections in the step size ``d_t = d · γ_t · √(1 - β2^t) / (1 - β1^t)``, at
    update ``t = step`` (counted from 1)."""
    return jnp.sqrt(1 - values["beta2"] ** step) / (1 - values["beta1"] ** step)


def leaf_statistics(rule, updates, params, stats, scalars, axis_name, reads=()):
    """Apply ``rule(g, p, *stats, *reads, **scalars) -> (new_stats, partials)`` to every leaf
    (the trees checked by the caller's ``Contract``), in the leaf's compute dtype; returns the
    new statistics (each in its old dtype) and each partial summed over the leaves (and
    ``psum``-ed over ``axis_name``). ``reads`` are trees the rule reads but does not change
    (the starting params)."""
    leaves, treedef = jax.tree.flatten(updates)
    new, partials = [[] for _ in stats], []
    trees = (params, *stats, *reads)
    for g, p, *old in zip(leaves, *(treedef.flatten_up_to(x) for x in trees)):
        dtype = compute_dtype(g.dtype, p.dtype, *(s.dtype for s in old))
        kept, parts = rule(g.astype(dtype), p.astype(dtype), *(s.astype(dtype) for s in old),
                           **scalars(dtype))
        for column, x, s in zip(new, kept, old):
            column.append(cast(x, s.dtype))
        partials.append(parts)
    sums = [sum_over_devices([parts[i] for parts in partials], axis_name)
            for i in range(len(partials[0]))] if partials else [0.0, 0.0]
    return [treedef.unflatten(column) for column in new], sums


def leaf_outputs(final, params, stats, scalars):
    """``final(p, *stats, **scalars)`` (the update) for every leaf, in the params' dtype."""
    def leaf(p, *kept):
        dtype = compute_dtype(p.dtype, *(s.dtype for s in kept))
        out = final(p.astype(dtype), *(s.astype(dtype) for s in kept), **scalars(dtype))
        return cast(out, p.dtype)

    return jax.tree.map(leaf, params, *stats)


def with_complements(values, *names):
    """``values[k]`` and ``1 - values[k]`` (as ``one_minus_<k>``) for each name, computed in
    the hyperparameters' dtype before any rounding to a leaf's (``1 - β`` of a float32 ``β``
    would lose digits)."""
    return {key: value for k in names
            for key, value in ((k, values[k]), (f"one_minus_{k}", 1 - values[k]))}


