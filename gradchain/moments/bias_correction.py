"""Bias correction of a zero-initialised moving average."""

from __future__ import annotations

from typing import NamedTuple

import jax

from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, next_count
from gradchain.core.public import public
from gradchain.core.validation import check_range


class BiasCorrectionState(NamedTuple):
    count: jax.Array
    hyperparams: dict


@public
def bias_correction(decay, *, hyperparam_name: str = "decay"):
    """``x̂_t = x_t / (1 - decay^t)``, ``t`` counted from 1 at the first update (Adam's m̂, v̂).

    ``t`` saturates at the int32 maximum like the step count (Optax's ``safe_increment``), so
    the correction stays 1 there instead of wrapping to a negative power.

    Give it the same ``decay`` (and ``hyperparam_name``) as the ``ema`` it corrects.

    Args:
      decay: the decay in ``[0, 1)`` of the EMA it corrects; a number, array or schedule.
      hyperparam_name: key of ``decay`` in the state's ``hyperparams`` (the EMA's name, to tie
        the two).

    Returns:
      A ``GradientTransformation`` whose state is ``BiasCorrectionState``: ``count`` (the ``t`` of the correction) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    check_range("bias_correction", hyperparam_name, decay, 0, 1, high_open=True)
    return elementwise_transformation(
        "bias_correction", BiasCorrectionState,
        lambda x, s, p, correction: (x / correction, None),
        Hyperparams(**{hyperparam_name: decay}),
        prepare=lambda count, **hp: {"correction": 1 - hp[hyperparam_name] ** next_count(count)},
        uses_count=True)
