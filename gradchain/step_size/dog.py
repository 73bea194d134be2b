"""DoG and DoWG: one step size for the whole tree, the distance travelled over the gradients seen.

Both keep the params at ``init`` (``θ_0``) and two scalars; the step size multiplies every leaf
of the update alike. Distances and norms are over all leaves together (complex leaves by their
modulus), ``psum``-ed over ``axis_name`` when the leaves are split across devices
(``gradchain/core/reductions.py``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq, scalar_dtype
from gradchain.core.hyperparams import cast, compute_dtype
from gradchain.core.public import public
from gradchain.core.reductions import check_axis_name, shown_with_axis_name, sum_over_devices
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_choice, check_not_schedule, check_range
from gradchain.kit.contract import Contract
from gradchain.core.hyperparams import ScalarOrSchedule

INIT_STEPS = ("distance", "learning_rate", "heuristic")


class DogState(NamedTuple):
    count: jax.Array | None  # None unless eps is a schedule
    is_init_step: jax.Array
    init_params: Any
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array
    hyperparams: dict


class DowgState(NamedTuple):
    count: jax.Array | None  # None unless eps is a schedule
    init_params: Any
    weighted_sq_norm_grads: jax.Array
    estim_sq_dist: jax.Array
    hyperparams: dict


def squared_norm(tree, axis_name=None) -> jax.Array:
    """``Σ_leaves Σ |x|²``, each leaf in its compute dtype; ``psum``-ed over ``axis_name``."""
    return sum_over_devices([jnp.sum(abs_sq(x.astype(compute_dtype(x.dtype))))
                             for x in jax.tree.leaves(tree)], axis_name)


def distance_squared(start, params, axis_name=None) -> jax.Array:
    """``‖θ_0 - θ‖²`` over the whole tree (the difference taken in the params' dtype)."""
    return squared_norm(jax.tree.map(lambda p0, p: p0 - p, start, params), axis_name)


def _copy(params):
    """The params at ``init``, in buffers of their own (a donated state must not share them)."""
    return jax.tree.map(lambda p: jnp.array(p, copy=True), params)


def _scaled(updates, rate):
    """``rate · u`` for every leaf, in the leaf's dtype."""
    return jax.tree.map(lambda u: cast(u * cast(rate, jnp.finfo(compute_dtype(u.dtype)).dtype),
                                       u.dtype), updates)


@public
def scale_by_dog(init_step=("heuristic", 1e-6), eps: ScalarOrSchedule = 1e-8, *,
                 axis_name=None) -> GradientTransformation:
    """Distance over Gradients (Ivgi, Hinder & Carmon 2023): ``u -> η_t · u`` with

        r̄_t = max(r_ε, max_{k≤t} ‖θ_k - θ_0‖),   G_t = Σ_{k≤t} ‖g_k‖²,   η_t = r̄_t / √(G_t + ε)

    (norms over the whole tree). ``init_step = (kind, value)`` sets the start (Optax's
    ``scale_by_dog``, whose arguments and defaults these are): ``"distance"``: ``r_ε = value``;
    ``"heuristic"``: ``r_ε = value · (1 + ‖θ_0‖)`` (the paper's 1e-6, 1e-4 with batch
    normalisation); ``"learning_rate"``: ``r_ε = 0`` and ``η_0 = value`` at the first update.
    Needs ``params``; give ``init`` the real starting params (``θ_0`` is kept).

    Args:
      init_step: ``(kind, value)``, kind one of ``"distance"``, ``"learning_rate"``,
        ``"heuristic"``, value ``> 0`` (used once: at ``init``, or at the first update).
      eps: ε ``>= 0``, added to ``G_t``.
      axis_name: the mesh or ``pmap`` axis the leaves are split over (norms ``psum``-ed over
        it), or None.

    Returns:
      A ``GradientTransformation`` whose state is a ``DogState`` (``is_init_step``, the starting
      params ``init_params``, ``max_dist`` ``r̄``, ``sum_sq_norm_grads`` ``G``, the count and the
      hyperparameters). Needs ``params``.
    """
    name = "scale_by_dog"
    kind, value = _init_step(name, init_step)
    check_range(name, "eps", eps, 0)
    check_axis_name(name, axis_name)
    contract = Contract(name, {"eps": eps})

    def init(params):
        contract.check_params(params)
        dtype = scalar_dtype(params)
        start = {"distance": value, "learning_rate": 0.0,
                 "heuristic": value * (1 + jnp.sqrt(squared_norm(params, axis_name)))}[kind]
        return DogState(contract.init_count(), jnp.asarray(True), _copy(params),
                        jnp.asarray(start, dtype), jnp.zeros([], dtype),
                        contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        del extra
        step = contract.begin(updates, state, params, stat=state.init_params, needs_params=True)
        values, dtype = step.values, state.max_dist.dtype
        dist = jnp.sqrt(distance_squared(state.init_params, params, axis_name))
        max_dist = jnp.maximum(state.max_dist, cast(dist, dtype))
        sum_sq = state.sum_sq_norm_grads + cast(squared_norm(updates, axis_name), dtype)
        rate = max_dist / jnp.sqrt(sum_sq + cast(values["eps"], dtype))
        if kind == "learning_rate":
            rate = jnp.where(state.is_init_step, cast(value, dtype), rate)
        return _scaled(updates, rate), DogState(step.count, jnp.asarray(False),
                                                state.init_params, max_dist, sum_sq, step.stored)

    return GradientTransformation(
        init, update, name=name, state_type=DogState,
        hyperparams=shown_with_axis_name({"init_step": init_step, "eps": eps}, axis_name))


def _init_step(name, init_step):
    if not (isinstance(init_step, tuple) and len(init_step) == 2):
        raise TypeError(f"{name}: init_step={init_step!r} is not a pair (kind, value); expected "
                        f"kind one of {', '.join(map(repr, INIT_STEPS))}")
    kind, value = init_step
    check_choice(name, "init_step[0]", kind, INIT_STEPS)
    check_range(name, "init_step[1]", value, 0, low_open=True, record=False)
    check_not_schedule(name, "init_step[1]", value)
    return kind, value


@public
def scale_by_dowg(init_estim_sq_dist=None, eps=1e-4, *, axis_name=None) -> GradientTransformation:
    """Distance over Weighted Gradients (Khaled, Mishchenko & Jin 2023): ``u -> η_t · u`` with

        r̄_t² = max(r̄²_{t-1}, ‖θ_t - θ_0‖²),  v_t = v_{t-1} + r̄_t² ‖g_t‖²,  η_t = r̄_t² / (√v_t + ε)

    (norms over the whole tree; ``r̄_0² = init_estim_sq_dist``, or ε when it is None).
    Arguments and defaults are Optax's ``scale_by_dowg``. Needs ``params``.

    Args:
      init_estim_sq_dist: the first estimate of the squared distance to the solution, ``> 0``,
        or None (ε); used once, at ``init``.
      eps: ε ``> 0`` in the step size's denominator.
      axis_name: the mesh or ``pmap`` axis the leaves are split over (norms ``psum``-ed over
        it), or None.

    Returns:
      A ``GradientTransformation`` whose state is a ``DowgState`` (the starting params
      ``init_params``, ``weighted_sq_norm_grads`` ``v``, ``estim_sq_dist`` ``r̄²``, the count and
      the hyperparameters). Needs ``params``.
    """
    name = "scale_by_dowg"
    if init_estim_sq_dist is not None:
        check_range(name, "init_estim_sq_dist", init_estim_sq_dist, 0, low_open=True,
                    record=False)
        check_not_schedule(name, "init_estim_sq_dist", init_estim_sq_dist)
    check_range(name, "eps", eps, 0, low_open=True)
    if init_estim_sq_dist is None:
        check_not_schedule(name, "eps", eps)
    check_axis_name(name, axis_name)
    contract = Contract(name, {"eps": eps})
    start = eps if init_estim_sq_dist is None else init_estim_sq_dist

    def init(params):
        contract.check_params(params)
        dtype = scalar_dtype(params)
        return DowgState(contract.init_count(), _copy(params), jnp.zeros([], dtype),
                         jnp.asarray(start, dtype), contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        del extra
        step = contract.begin(updates, state, params, stat=state.init_params, needs_params=True)
        values, dtype = step.values, state.estim_sq_dist.dtype
        sq_dist = cast(distance_squared(state.init_params, params, axis_name), dtype)
        estim = jnp.maximum(state.estim_sq_dist, sq_dist)
        weighted = estim * cast(squared_norm(updates, axis_name), dtype) \
            + state.weighted_sq_norm_grads
        rate = estim / (jnp.sqrt(weighted) + cast(values["eps"], dtype))
        return _scaled(updates, rate), DowgState(step.count, state.init_params, weighted, estim,
                                                 step.stored)

    return GradientTransformation(
        init, update, name=name, state_type=DowgState,
        hyperparams=shown_with_axis_name({"init_estim_sq_dist": init_estim_sq_dist, "eps": eps},
                                         axis_name))
