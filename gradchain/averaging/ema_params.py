"""An exponential moving average of the params (Polyak-style averaging)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.averaging.running import eval_params, fold, init_average
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_floating_dtype, check_range, check_transformations
from gradchain.introspection.find import find_state
from gradchain.kit.contract import Contract
from gradchain.core.hyperparams import ScalarOrSchedule

NAME = "ema_params"


class EmaParamsState(NamedTuple):
    count: jax.Array
    inner_state: Any
    params_ema: Any
    hyperparams: dict


@public
def ema_params(inner, decay: ScalarOrSchedule = 0.999, *, dtype=None) -> GradientTransformation:
    """Wrap ``inner`` (any optimizer) and keep an exponential moving average of the params it
    produces; the updates are ``inner``'s, unchanged.

    With ``θ_t = θ_{t-1} + u_t`` the params after update ``t``:

        a_0 = θ_0,   a_1 = θ_1,   a_t = β · a_{t-1} + (1 - β) · θ_t   (t ≥ 2)

    which is PyTorch's ``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(β))`` with
    ``update_parameters`` called after every ``optimizer.step()`` (its first call copies the
    params). Evaluate with ``ema_eval_params(state, params)``. A schedule for β is evaluated
    at the update count (0 at the first update, whose β is not used).

    Args:
      inner: the optimizer whose params are averaged, any gradient transformation.
      decay: β in ``[0, 1]``; a number, array or schedule.
      dtype: dtype of the average (default: the params'). With bfloat16 params, float32 keeps
        ``(1 - β) θ`` from rounding away.

    Returns:
      A ``GradientTransformation`` whose state is an ``EmaParamsState(count, inner_state,
      params_ema, hyperparams)``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0])}
      >>> tx = gc.ema_params(gc.sgd(0.5), decay=0.5)
      >>> state = tx.init(params)
      >>> for _ in range(3):  # the params go 0.5, 0.0, -0.5
      ...     updates, state = tx.update({"w": jnp.array([1.0])}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> gc.ema_eval_params(state, params)["w"].tolist()
      [-0.125]
    """
    check_transformations(NAME, {"inner": inner})
    check_range(NAME, "decay", decay, 0, 1)
    check_floating_dtype(NAME, "dtype", dtype)
    contract = Contract(NAME, {"decay": decay}, counts=True)

    def init(params):
        contract.check_params(params)
        return EmaParamsState(contract.init_count(), inner.init(params),
                              init_average(params, dtype), contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        step = contract.begin(updates, state, params, stat=state.params_ema, needs_params=True)
        updates, inner_state = call_update(inner, updates, state.inner_state, params, extra)
        weight = jnp.where(step.step == 1, 1.0, 1.0 - step.values["decay"])
        average = fold(state.params_ema, params, updates, weight)
        return updates, EmaParamsState(step.count, inner_state, average, step.stored)

    return GradientTransformation(init, update, name=NAME,
                                  hyperparams={"decay": decay, "dtype": dtype},
                                  children=[inner], state_type=EmaParamsState)


def ema_eval_params(state, params):
    """The params to evaluate with under ``ema_params``: its moving average, in the params'
    dtypes (before the first update, the params ``init`` was given).

    Args:
      state: the optimizer's state, with one ``ema_params`` anywhere in it (``nnx.Optimizer``'s
        ``opt_state`` too).
      params: the current params (they give the tree and the dtypes).

    Returns:
      The moving average as a params tree.
    """
    return eval_params(find_state(state, "params_ema"), params)
