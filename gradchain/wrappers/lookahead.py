"""Lookahead (Zhang et al. 2019): k fast steps forward, one slow step back, on ordinary params."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.hyperparams import cast, compute_dtype, state_names
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.updates import update_dtype
from gradchain.core.validation import check_range, check_transformations, check_whole_number
from gradchain.kit.contract import Contract
from gradchain.core.hyperparams import ScalarOrSchedule

NAME = "lookahead"


class LookaheadState(NamedTuple):
    count: jax.Array
    inner_state: Any
    slow: Any
    hyperparams: dict


@public
def lookahead(inner, sync_period: ScalarOrSchedule = 5, slow_step_size: ScalarOrSchedule = 0.5,
              reset_state: bool = False, *, hyperparam_name=None) -> GradientTransformation:
    """Wrap ``inner`` (any optimizer) in Lookahead: the params are the fast weights θ, the slow
    weights φ live in the state.

    Each update takes one step of ``inner`` from θ; after every ``k``-th update (``t``, counted
    from 1, divisible by ``k``) the slow weights move towards the fast ones,
    ``φ ← φ + α (θ_fast - φ)``, and the fast weights restart there: the returned update is then
    ``φ_new - θ``, so ``apply_updates`` lands the params exactly on the new slow weights. Between
    syncs the updates are ``inner``'s. The paper's defaults: k = 5, α = 0.5.

    Unlike Optax's ``lookahead``, which needs the params as a ``LookaheadParams(fast, slow)``
    pair, this is a drop-in transformation on ordinary params (a Flax ``TrainState`` or
    ``nnx.Optimizer`` works unchanged); the trajectory of the params equals Optax's fast
    params. The slow weights are ``state.slow`` (evaluate with them between syncs, if wanted).
    Apply the returned updates unmodified, or the fast and slow weights fall out of step.
    The sync test ``t mod k = 0`` is done in integers, exact at every count; once the count
    saturates at ``2^31 - 1`` it stops advancing, and so do the syncs (except with ``k = 1``,
    which syncs at every update).

    Args:
      inner: the fast optimizer, any gradient transformation.
      sync_period: k, an integer ``>= 1`` (stored as a hyperparameter).
      slow_step_size: α in ``[0, 1]``; a number, array or schedule (of the update count).
      reset_state: re-initialise ``inner``'s state at every sync (Optax's option).
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is a ``LookaheadState``: ``count`` (updates
      taken), ``inner_state``, ``slow`` (the slow weights φ, a params-shaped tree) and
      ``hyperparams`` (``sync_period``, ``slow_step_size``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.lookahead(gc.sgd(1.0), sync_period=2, slow_step_size=0.5)
      >>> params = {"w": jnp.array([0.0])}
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update({"w": jnp.array([-1.0])}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()  # fast weights reached 2, the sync lands halfway
      [1.0]
    """
    check_transformations(NAME, {"inner": inner})
    names = state_names(NAME, hyperparam_name, ("sync_period", "slow_step_size"))
    check_whole_number(NAME, names["sync_period"], sync_period, 1)
    check_range(NAME, names["slow_step_size"], slow_step_size, 0, 1)
    contract = Contract(NAME, {"sync_period": sync_period, "slow_step_size": slow_step_size},
                        counts=True, names=names)

    def init(params):
        contract.check_params(params)
        return LookaheadState(contract.init_count(), inner.init(params), params,
                              contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        step = contract.begin(updates, state, params, stat=state.slow, needs_params=True)
        fast_updates, inner_state = call_update(inner, updates, state.inner_state, params, extra)
        count = step.count
        period = jnp.round(step.values["sync_period"]).astype(count.dtype)
        sync = (count % period == 0) & ((count > state.count) | (period == 1))
        scalars = Contract.scalars({"alpha": step.values["slow_step_size"]})

        def leaf(u, p, s):
            dtype = compute_dtype(u.dtype, p.dtype)
            fast = p.astype(dtype) + u.astype(dtype)
            new_slow = s.astype(dtype) + scalars(dtype)["alpha"] * (fast - s.astype(dtype))
            out = jnp.where(sync, new_slow - p.astype(dtype), u.astype(dtype))
            return cast(out, update_dtype(u, p)), cast(jnp.where(sync, new_slow, s), s.dtype)

        pairs = jax.tree.map(leaf, fast_updates, params, state.slow)
        outer = jax.tree.structure(fast_updates)
        new_updates, slow = jax.tree.transpose(outer, jax.tree.structure((0, 0)), pairs)
        if reset_state:
            inner_state = jax.tree.map(lambda fresh, kept: jnp.where(sync, fresh, kept),
                                       inner.init(params), inner_state)
        return new_updates, LookaheadState(count, inner_state, slow, step.stored)

    return GradientTransformation(init, update, name=NAME,
                                  hyperparams={**contract.specs, "reset_state": reset_state},
                                  children=[inner], parts=[(("inner_state",), inner)],
                                  state_type=LookaheadState)
