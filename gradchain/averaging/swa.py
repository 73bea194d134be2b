"""Stochastic weight averaging (Izmailov et al. 2018): the uniform average of the params from a
starting update on."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.averaging.running import eval_params, fold, init_average
from gradchain.core.hyperparams import next_count, zero_count
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import (check_floating_dtype, check_transformations,
                                       check_whole_number)
from gradchain.introspection.find import find_state
from gradchain.kit.contract import Contract

NAME = "swa"


class SwaState(NamedTuple):
    count: jax.Array
    inner_state: Any
    swa_params: Any
    n_averaged: jax.Array
    hyperparams: dict


@public
def swa(inner, swa_start=0, swa_freq=1, *, dtype=None) -> GradientTransformation:
    """Wrap ``inner`` (any optimizer) and keep the running average of the params it produces
    at every ``swa_freq``-th update after the first ``swa_start``; the updates are ``inner``'s.

    With ``θ_t`` the params after update ``t`` (counted from 1), update ``t`` is averaged when
    ``t > swa_start`` and ``t mod swa_freq = 0`` (torchcontrib's ``SWA`` automatic mode), by
    PyTorch's ``AveragedModel`` rule:

        a ← θ_t   (n = 0),   a ← a + (θ_t - a) / (n + 1)   (n ≥ 1);   n ← n + 1

    so ``a`` is the mean of the ``n`` averaged params. ``swa_eval_params(state, params)`` gives
    ``a`` (``params`` while ``n = 0``). For SWA's learning rate, give ``inner`` the schedule
    ``swalr`` (joined after the one before averaging with ``join_schedules``). PyTorch's
    ``update_bn`` (recomputing batch-norm statistics for the average) is the model's business,
    not the optimizer's: run it on the evaluated params. The step count and ``n`` saturate at
    ``2^31 - 1``; ``t mod swa_freq`` then stays fixed, so averaging goes on at every update or
    stops.

    Args:
      inner: the optimizer whose params are averaged, any gradient transformation.
      swa_start: the number of updates before averaging starts, a whole number ``>= 0``
        (stored as a hyperparameter).
      swa_freq: average every this many updates, a whole number ``>= 1`` (stored as a
        hyperparameter).
      dtype: dtype of the average (default: the params').

    Returns:
      A ``GradientTransformation`` whose state is a ``SwaState(count, inner_state, swa_params,
      n_averaged, hyperparams)``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0])}
      >>> tx = gc.swa(gc.sgd(0.5), swa_start=1)
      >>> state = tx.init(params)
      >>> for _ in range(3):  # the params go 0.5, 0.0, -0.5; the last two are averaged
      ...     updates, state = tx.update({"w": jnp.array([1.0])}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> gc.swa_eval_params(state, params)["w"].tolist()
      [-0.25]
    """
    check_transformations(NAME, {"inner": inner})
    check_whole_number(NAME, "swa_start", swa_start, 0)
    check_whole_number(NAME, "swa_freq", swa_freq, 1)
    check_floating_dtype(NAME, "dtype", dtype)
    contract = Contract(NAME, {"swa_start": swa_start, "swa_freq": swa_freq}, counts=True)

    def init(params):
        contract.check_params(params)
        return SwaState(contract.init_count(), inner.init(params), init_average(params, dtype),
                        zero_count(), contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        step = contract.begin(updates, state, params, stat=state.swa_params, needs_params=True)
        updates, inner_state = call_update(inner, updates, state.inner_state, params, extra)
        start = jnp.round(step.values["swa_start"]).astype(step.step.dtype)
        freq = jnp.round(step.values["swa_freq"]).astype(step.step.dtype)
        averaged = (step.step > start) & (step.step % freq == 0)
        n = state.n_averaged
        weight = jnp.where(averaged, 1.0 / (n.astype(step.values["swa_freq"].dtype) + 1), 0.0)
        average = fold(state.swa_params, params, updates, weight)
        n = jnp.where(averaged, next_count(n), n)
        return updates, SwaState(step.count, inner_state, average, n, step.stored)

    return GradientTransformation(init, update, name=NAME,
                                  hyperparams={"swa_start": swa_start, "swa_freq": swa_freq,
                                               "dtype": dtype},
                                  children=[inner], state_type=SwaState)


def swa_eval_params(state, params):
    """The params to evaluate with under ``swa``: the average of the params averaged so far,
    in the params' dtypes, or ``params`` themselves before the first averaged update (PyTorch's
    ``AveragedModel`` holds the params it was built with until then).

    Args:
      state: the optimizer's state, with one ``swa`` anywhere in it (``nnx.Optimizer``'s
        ``opt_state`` too).
      params: the current params.

    Returns:
      The average as a params tree (the params themselves before the first average).
    """
    average = find_state(state, "swa_params")
    n = find_state(state, "n_averaged")
    return jax.tree.map(lambda a, p: jnp.where(n > 0, a, p), eval_params(average, params),
                        params)
