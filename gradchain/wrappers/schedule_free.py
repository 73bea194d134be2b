"""Schedule-Free (Defazio et al. 2024): momentum replaced by interpolation and averaging."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import scalar_dtype
from gradchain.core.hyperparams import ScalarsByDtype, cast, compute_dtype, next_count
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import (check_floating_dtype, check_range,
                                       check_transformations)
from gradchain.introspection.find import find_state, plain_state
from gradchain.kit.contract import Contract
from gradchain.core.hyperparams import ScalarOrSchedule

NAME = "schedule_free"


class ScheduleFreeState(NamedTuple):
    count: jax.Array
    base_optimizer_state: Any
    z: Any
    weight_sum: jax.Array
    max_lr: jax.Array
    hyperparams: dict


@public
def schedule_free(base_optimizer, learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9,
                  weight_lr_power: ScalarOrSchedule = 2.0,
                  state_dtype=None) -> GradientTransformation:
    """Make ``base_optimizer`` schedule-free (Defazio et al. 2024, "The Road Less Scheduled").

    The params are ``y``, where gradients are taken; the state keeps the base optimizer's
    iterate ``z`` (``z_0 = θ_0``); the average ``x``, where to evaluate, is recovered from the
    two (``schedule_free_eval_params``). Each update, with ``u`` the base optimizer's update
    at ``y`` and ``γ_t`` the learning rate::

        γ̄_t = max_{k≤t} γ_k,   w_t = γ̄_t^p,   c_t = w_t / Σ_{k≤t} w_k
        x_t = (y_t - (1 - β1) z_t) / β1,   z_{t+1} = z_t + u
        x_{t+1} = (1 - c_t) x_t + c_t z_{t+1},   y_{t+1} = β1 x_{t+1} + (1 - β1) z_{t+1}

    and the update is ``y_{t+1} - y_t = c_t (z_t - y_t) + (1 - β1 (1 - c_t)) u`` (the same, with
    no difference of two params-sized numbers left in it). Give the base optimizer no momentum
    (``b1=0`` in Adam) and the same ``learning_rate``, warmed up but not decayed. A scheduled
    ``learning_rate`` is evaluated at the number of earlier updates plus one (Optax's
    convention: its count starts at 1; not stored: the base optimizer stores its own), the
    base optimizer's own at its own count. Optax's ``contrib.schedule_free``: same arguments,
    defaults and numbers. Needs ``params``.

    Args:
      base_optimizer: any gradient transformation (gradchain's or Optax's).
      learning_rate: γ ``>= 0``, the base optimizer's rate, which sets the averaging weights:
        a number, array or schedule.
      b1: β1 in ``(0, 1]``, the interpolation between ``x`` and ``z``.
      weight_lr_power: p ``>= 0``.
      state_dtype: dtype of ``z``. None: the params' dtype, at least float32 (Optax: the
        params' dtype; give ``state_dtype=jnp.bfloat16`` for its layout with bfloat16 params,
        where ``z``'s rounding, a fraction of the params' size, swamps the updates).

    Returns:
      A ``GradientTransformation`` whose state is a ``ScheduleFreeState``: ``z``, the sum of the
      averaging weights, the largest learning rate so far, the base optimizer's state, the count
      and the hyperparameters (``b1``, ``weight_lr_power``, ``learning_rate``).
    """
    check_transformations(NAME, {"base_optimizer": base_optimizer})
    check_range(NAME, "learning_rate", learning_rate, 0)
    check_range(NAME, "b1", b1, 0, 1, low_open=True)
    check_range(NAME, "weight_lr_power", weight_lr_power, 0)
    check_floating_dtype(NAME, "state_dtype", state_dtype)
    # A scheduled rate is not stored here: the base optimizer stores its own, one step behind
    # (Optax evaluates this one at its count, which starts at 1), and a learning_rate kept in
    # two places with two values could not be read or refused by name.
    scheduled = callable(learning_rate)
    contract = Contract(NAME, {**({} if scheduled else {"learning_rate": learning_rate}),
                               "b1": b1, "weight_lr_power": weight_lr_power}, counts=True)

    def init(params):
        contract.check_params(params)
        z = jax.tree.map(lambda p: jnp.array(p, dtype=state_dtype or compute_dtype(p.dtype),
                                             copy=True), params)
        dtype = scalar_dtype(params)
        return ScheduleFreeState(contract.init_count(), base_optimizer.init(params), z,
                                 jnp.zeros([], dtype), jnp.zeros([], dtype),
                                 contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        step = contract.begin(updates, state, params, stat=state.z, needs_params=True)
        values, dtype = step.values, state.max_lr.dtype
        rate = (learning_rate(next_count(state.count)) if scheduled
                else values["learning_rate"])
        max_lr = jnp.maximum(state.max_lr, cast(rate, dtype))
        weight = max_lr ** cast(values["weight_lr_power"], dtype)
        weight_sum = state.weight_sum + weight
        # 0/0 (no weight yet: a zero rate) is 0; a NaN weight stays NaN.
        average = jnp.where(jnp.isnan(weight) | jnp.isnan(weight_sum), jnp.nan,
                            jnp.nan_to_num(weight / weight_sum, nan=0.0, posinf=jnp.inf))
        base_updates, base_state = call_update(base_optimizer, updates,
                                               state.base_optimizer_state, params, extra)
        # y_{t+1} - y_t = c (z_t - y_t) + (1 - β1 (1 - c)) u: the formula above, rearranged so
        # that no difference of two params-sized numbers is left in the update.
        scalars = ScalarsByDtype({"average": average,
                                  "step": 1 - values["b1"] * (1 - average)})

        def leaf(y, z, u):
            work = compute_dtype(y.dtype, z.dtype, u.dtype)
            s = scalars(work)
            out = s["average"] * (z.astype(work) - y.astype(work)) + s["step"] * u.astype(work)
            return cast(out, y.dtype), cast(z.astype(work) + u.astype(work), z.dtype)

        pairs = jax.tree.map(leaf, params, state.z, base_updates)
        outer = jax.tree.structure(params)
        new_updates, z = jax.tree.transpose(outer, jax.tree.structure((0, 0)), pairs)
        return new_updates, ScheduleFreeState(step.count, base_state, z, weight_sum, max_lr,
                                              step.stored)

    return GradientTransformation(
        init, update, name=NAME, children=[base_optimizer],
        parts=[(("base_optimizer_state",), base_optimizer)], state_type=ScheduleFreeState,
        hyperparams={"learning_rate": learning_rate, "b1": b1,
                     "weight_lr_power": weight_lr_power, "state_dtype": state_dtype})


@public
def schedule_free_eval_params(state, params) -> GradientTransformation:
    """The params to evaluate a schedule-free run at: ``x = (y - (1 - β1) z) / β1``.

    ``state`` is the state of ``schedule_free`` or of an optimizer holding one (an alias,
    ``nnx.Optimizer``'s ``opt_state``); ``params`` are the training params ``y`` (Flax
    ``Variable``s are read as their arrays, and the result holds arrays). Optax's
    ``contrib.schedule_free_eval_params``.

    Args:
      state: the state of ``schedule_free``, or any state holding one (found by
        ``find_state``).
      params: the training params ``y`` (the ones the updates were applied to).

    Returns:
      The params ``x`` to evaluate at: a tree of ``params``' structure and dtypes.
    """
    try:
        z = find_state(state, "z", hyperparam="weight_lr_power")
        b1 = find_state(state, "hyperparams", hyperparam="weight_lr_power")["b1"]
    except KeyError:
        raise ValueError("schedule_free_eval_params: the state holds no schedule_free state "
                         "(give the state of schedule_free or of an optimizer built with it)"
                         ) from None

    def leaf(y, zi):
        work = compute_dtype(jnp.result_type(y), zi.dtype)
        b = cast(b1, jnp.finfo(work).dtype)
        return cast((y.astype(work) - (1 - b) * zi.astype(work)) / b, jnp.result_type(y))

    return jax.tree.map(leaf, plain_state(params), z)
