"""An exponential moving average with an optional Nesterov look-ahead (ADOPT's and Muon's
momentum)."""

from __future__ import annotations

import inspect
from typing import NamedTuple

import jax

from gradchain.core.hyperparams import next_count
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import elementwise
from gradchain.core.transformation import GradientTransformation


class NesterovEmaState(NamedTuple):
    count: jax.Array
    ema: object
    hyperparams: dict


@public
def nesterov_ema(decay, *, nesterov: bool = True, debias: bool = False, dtype=None,
                 hyperparam_name: str = "decay") -> GradientTransformation:
    """``m_t = β m_{t-1} + (1 - β) u_t`` (``m_0 = 0``), output with a look-ahead.

    - ``nesterov=True``: ``β m_t + (1 - β) u_t`` (ADOPT's ``nesterov``, torch's Muon:
      ``u.lerp(m_t, β)``); with ``debias=True`` each term is bias-corrected,
      ``β m_t / (1 - β^{t+1}) + (1 - β) u_t / (1 - β^t)`` (Optax's Muon, and Optax's NAdam
      first moment, which ``nesterov_first_moment`` also gives with NAdam's momentum schedule);
    - ``nesterov=False``: ``m_t``, or ``m_t / (1 - β^t)`` with ``debias=True``.

    Args:
      decay: β in ``[0, 1]`` (``[0, 1)`` with ``debias``); a number, array or schedule.
      nesterov: add the look-ahead.
      debias: divide by the bias corrections (t counted from 1 at the first update).
      dtype: dtype of ``m`` (default: the params').
      hyperparam_name: key of β in the state's ``hyperparams`` (``"b1"`` in ADOPT, ``"beta"``
        in Muon).

    Returns:
      A ``GradientTransformation``; its state is ``NesterovEmaState(count, ema, hyperparams)``.
    """
    check_range("nesterov_ema", hyperparam_name, decay, 0, 1, high_open=debias)

    def scalars(step=None, **values):
        beta = values[hyperparam_name]
        if not debias:
            return {"beta": beta, "now": 1.0, "next": 1.0}
        return {"beta": beta, "now": 1 - beta ** step, "next": 1 - beta ** next_count(step)}

    def rule(u, stat, beta, now, next):
        m = beta * stat + (1 - beta) * u
        if nesterov:
            return beta * (m / next) + (1 - beta) * (u / now), m
        return m / now, m

    wanted = (hyperparam_name, "step") if debias else (hyperparam_name,)
    scalars.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in wanted])
    return elementwise(
        rule, name="nesterov_ema", hyperparams={hyperparam_name: decay}, statistic=0.0,
        scalars=scalars, dtype=dtype, state_type=NesterovEmaState,
        display={hyperparam_name: decay, "nesterov": nesterov, "debias": debias})
