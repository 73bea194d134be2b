"""Yogi's second moment: an additive, sign-controlled update instead of an average."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_not_schedule, check_range
from gradchain.kit.rules import elementwise
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "yogi_second_moment"


class YogiMomentState(NamedTuple):
    count: jax.Array
    nu: object
    hyperparams: dict


@public
def yogi_second_moment(b2: ScalarOrSchedule = 0.999, *, initial_value=1e-6,
                       dtype=None) -> GradientTransformation:
    """``v_t = v_{t-1} - (1 - β2) · sign(v_{t-1} - x_t) · x_t`` on ``x_t = |g_t|²`` (put
    ``square()`` in front), ``v_0 = initial_value``; outputs ``v_t`` (Zaheer et al. 2018,
    "Adaptive Methods for Nonconvex Optimization", Yogi).

    Adam's ``v_t - v_{t-1} = -(1 - β2)(v_{t-1} - x_t)`` can shrink ``v`` fast and so raise the
    effective rate abruptly; Yogi's change has the size of ``x_t`` only. Not bias-corrected:
    follow it with ``bias_correction(β2)`` as Optax does.

    ``x`` is real (``square()``'s output, also for complex params, whose ``v`` is kept in their
    real dtype).

    Args:
      b2: β2 in ``[0, 1]`` (a number, array or schedule).
      initial_value: ``v_0 > 0`` (Optax's ``initial_accumulator_value``).
      dtype: dtype of ``v`` (default: the params'; real for complex params).

    Returns:
      A ``GradientTransformation`` whose state is a ``YogiMomentState`` (``count``, ``v`` as
      ``nu``, ``hyperparams`` with ``b2``); it outputs ``v_t``.
    """
    check_range(NAME, "b2", b2, 0, 1)
    check_not_schedule(NAME, "initial_value", initial_value)
    check_range(NAME, "initial_value", initial_value, 0, low_open=True, record=False)

    def rule(x, stat, weight):
        new = stat - weight * jnp.sign(stat - x) * x
        return new, new

    return elementwise(rule, name=NAME, hyperparams={"b2": b2}, statistic=initial_value,
                       scalars=lambda b2: {"weight": 1 - b2}, dtype=dtype,
                       output_dtype="statistic", real_statistic=True,
                       state_type=YogiMomentState)
