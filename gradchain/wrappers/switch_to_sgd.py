"""SWATS' switch (Keskar & Socher 2017): from an adaptive method to SGD at an estimated rate."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.hyperparams import as_hyperparam_array, cast, compute_dtype, state_names
from gradchain.core.reductions import check_axis_name, shown_with_axis_name, sum_over_devices
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.updates import update_dtype
from gradchain.core.validation import (check_range, check_same_shapes, check_same_structure,
                                       check_transformations)
from gradchain.kit.contract import Contract
from gradchain.core.hyperparams import ScalarOrSchedule

NAME = "switch_to_sgd"


class SwitchToSgdState(NamedTuple):
    """``estimate`` is λ_k (not bias-corrected); ``sgd_learning_rate`` is Λ (0 before the
    switch); ``switched`` is the phase (the switch happened after step ``count`` where it first
    reads True)."""

    count: jax.Array
    adaptive_state: Any
    sgd_state: Any
    estimate: jax.Array
    sgd_learning_rate: jax.Array
    switched: jax.Array
    hyperparams: dict


def _dot(x, y, axis_name):
    """``Σ x·y`` over all leaves, each product in at least float32, summed in the
    hyperparameters' dtype (then over ``axis_name`` when the leaves are split over it). Complex
    leaves count as pairs of reals: ``Re(Σ x̄·y)``."""
    dtype = jnp.result_type(float)

    def product(a, b):
        work = compute_dtype(a.dtype, b.dtype)
        return jnp.real(jnp.vdot(a.astype(work), b.astype(work))).astype(dtype)

    products = [product(a, b) for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y))]
    return jnp.asarray(sum_over_devices(products, axis_name), dtype)


@public
def switch_to_sgd(adaptive, sgd, *, estimate_decay: ScalarOrSchedule = 0.999,
                  tolerance: ScalarOrSchedule = 1e-9, axis_name=None,
                  hyperparam_name=None) -> GradientTransformation:
    """Run ``adaptive`` until its step's projection on the gradient gives a settled learning
    rate Λ, then ``-Λ · sgd(g)`` for good (Keskar & Socher 2017, SWATS, Algorithm 1).

    Adaptive phase, step ``k`` (from 1): ``p_k = adaptive(g_k)`` is the full step (learning rate
    and sign included, ``θ += p_k``). If ``p_kᵀg_k ≠ 0``: the rate at which SGD would make the
    same progress along ``p_k`` is ``γ_k = p_kᵀp_k / (-p_kᵀg_k)``, and
    ``λ_k = β λ_{k-1} + (1 - β) γ_k`` (β = ``estimate_decay``, the paper's β2). The switch
    happens, after this step, when ``k > 1`` and ``|λ_k / (1 - β^k) - γ_k| < tolerance``; then
    ``Λ = λ_k / (1 - β^k)``. SGD phase: ``θ -= Λ · sgd(g)``, ``sgd`` starting from a fresh state
    (the paper's ``v = 0``); ``adaptive``'s state is kept but no longer updated.

    The products run over the whole parameter vector, as in the paper (one Λ for all leaves),
    with its absolute tolerance (ε = 1e-9 there; community implementations use a relative test
    and also require Λ > 0). The phase is a boolean in the state and the step a ``lax.cond``:
    no Python branching, so it works under ``jit``, ``vmap`` (per batch member) and
    ``grad``.

    Args:
      adaptive: the first phase, giving full steps (e.g. Adam with its learning rate).
      sgd: the second phase's direction before the rate (SWATS: momentum then ``1 - β1``).
      estimate_decay: β in ``[0, 1)`` of the rate estimate.
      tolerance: ``>= 0``, the paper's switching ε.
      axis_name: under ``shard_map``/``pmap`` with the params split over this axis, the
        products over the whole parameter vector (``psum``-ed over it), so every device
        switches at the same step with the same Λ; None (default): not split.
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``;
        SWATS stores ``estimate_decay`` as ``b2``, tied to its Adam phase's β2).

    Returns:
      A ``GradientTransformation`` whose state is a ``SwitchToSgdState``: ``count``,
      ``adaptive_state``, ``sgd_state``, ``estimate`` (λ_k), ``sgd_learning_rate`` (Λ, 0
      before the switch), ``switched`` and ``hyperparams``.
    """
    check_transformations(NAME, {"adaptive": adaptive, "sgd": sgd})
    check_axis_name(NAME, axis_name)
    names = state_names(NAME, hyperparam_name, ("estimate_decay", "tolerance"))
    check_range(NAME, names["estimate_decay"], estimate_decay, 0, 1, high_open=True)
    check_range(NAME, names["tolerance"], tolerance, 0)
    contract = Contract(NAME, {"estimate_decay": estimate_decay, "tolerance": tolerance},
                        counts=True, names=names)

    def init(params):
        contract.check_params(params)
        zero = as_hyperparam_array(0.0)
        return SwitchToSgdState(contract.init_count(), adaptive.init(params), sgd.init(params),
                                zero, zero, jnp.zeros([], bool), contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        begun = contract.begin(updates, state, params, match_params=True)
        values, step = begun.values, begun.step
        decay = values["estimate_decay"]
        leaves, treedef = jax.tree.flatten(updates)
        dtypes = [update_dtype(u, p) for u, p in zip(leaves, begun.params)]

        def in_update_dtypes(steps):
            """Both phases return the params' dtypes (``lax.cond`` needs one output type)."""
            return treedef.unflatten([cast(x, d) for x, d in zip(treedef.flatten_up_to(steps),
                                                                  dtypes)])

        def adaptive_phase():
            p, adaptive_state = call_update(adaptive, updates, state.adaptive_state, params,
                                            extra)
            check_same_structure(NAME, p, updates, "updates")
            check_same_shapes(NAME, p, updates, "updates")
            projection = _dot(p, updates, axis_name)
            moved = projection != 0
            rate = _dot(p, p, axis_name) / jnp.where(moved, -projection, 1)
            estimate = jnp.where(moved, decay * state.estimate + (1 - decay) * rate,
                                 state.estimate)
            corrected = estimate / (1 - decay ** step)
            switch = moved & (step > 1) & (jnp.abs(corrected - rate) < values["tolerance"])
            return (in_update_dtypes(p), adaptive_state, state.sgd_state, estimate,
                    jnp.where(switch, corrected, state.sgd_learning_rate), switch)

        def sgd_phase():
            direction, sgd_state = call_update(sgd, updates, state.sgd_state, params, extra)
            rate = state.sgd_learning_rate
            steps = jax.tree.map(lambda d: -rate.astype(d.dtype) * d, direction)
            return (in_update_dtypes(steps), state.adaptive_state, sgd_state, state.estimate, rate,
                    state.switched)

        out, adaptive_state, sgd_state, estimate, rate, switched = jax.lax.cond(
            state.switched, sgd_phase, adaptive_phase)
        return out, SwitchToSgdState(begun.count, adaptive_state, sgd_state, estimate, rate,
                                     switched, begun.stored)

    return GradientTransformation(init, update, name=NAME,
                                  hyperparams=shown_with_axis_name(contract.specs, axis_name),
                                  children=(adaptive, sgd),
                                  parts=[(("adaptive_state",), adaptive), (("sgd_state",), sgd)],
                                  state_type=SwitchToSgdState)
