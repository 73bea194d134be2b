"""Bias correction of a zero-initialised moving average."""

from __future__ import annotations

from typing import NamedTuple

import jax

from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, next_count, state_names
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.core.transformation import GradientTransformation


class BiasCorrectionState(NamedTuple):
    count: jax.Array
    hyperparams: dict


@public
def bias_correction(decay, *, hyperparam_name=None) -> GradientTransformation:
    """``x̂_t = x_t / (1 - decay^t)``, ``t`` counted from 1 at the first update (Adam's m̂, v̂).

    ``t`` saturates at the int32 maximum like the step count (Optax's ``safe_increment``), so
    the correction stays 1 there instead of wrapping to a negative power.

    ``ema(decay, debias=True)`` corrects its own average with its own decay; this separate
    stage is for orders that put something between the two (torch's AMSGrad takes
    ``max_v()`` of the raw ``v``). Give it the ``hyperparam_name`` of the ``ema`` it corrects,
    so the two hold one tied decay.

    Args:
      decay: the decay in ``[0, 1)`` of the EMA it corrects; a number, array or schedule.
      hyperparam_name: key of ``decay`` in the state's ``hyperparams`` (the EMA's name, to tie
        the two).

    Returns:
      A ``GradientTransformation`` whose state is ``BiasCorrectionState``: ``count`` (the ``t`` of the correction) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    names = state_names("bias_correction", hyperparam_name, ("decay",))
    check_range("bias_correction", names["decay"], decay, 0, 1, high_open=True)
    return elementwise_transformation(
        "bias_correction", BiasCorrectionState,
        lambda x, s, p, correction: (x / correction, None),
        Hyperparams(names, decay=decay),
        prepare=lambda count, decay: {"correction": 1 - decay ** next_count(count)},
        uses_count=True)
