"""The undamped momentum sum ``m_t = β m_{t-1} + u_t`` (Polyak's heavy ball, Optax's ``trace``)."""

from __future__ import annotations

from typing import NamedTuple

import jax

from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import elementwise
from gradchain.core.transformation import GradientTransformation


class MomentumSumState(NamedTuple):
    count: jax.Array
    trace: object
    hyperparams: dict


@public
def momentum_sum(decay, *, dtype=None, hyperparam_name: str = "decay") -> GradientTransformation:
    """``m_t = β m_{t-1} + u_t`` (``m_0 = 0``); outputs ``m_t``.

    ``scale_by_momentum(β)`` is the same sum with torch's options (dampening, Nesterov) and
    its hyperparameter named ``momentum``; this one is named by the optimizer that uses it
    (``b1`` in NovoGrad and simplified AdEMAMix).

    Args:
      decay: β in ``[0, 1]``; a number, array or schedule.
      dtype: dtype of ``m`` (default: the params').
      hyperparam_name: key of β in the state's ``hyperparams``.

    Returns:
      A ``GradientTransformation``; its state is ``MomentumSumState(count, trace, hyperparams)``.
    """
    check_range("momentum_sum", hyperparam_name, decay, 0, 1)
    return elementwise(
        lambda u, stat, decay: (decay * stat + u,) * 2, name="momentum_sum",
        hyperparams={hyperparam_name: decay}, statistic=0.0, dtype=dtype,
        scalars=lambda **values: {"decay": values[hyperparam_name]},
        state_type=MomentumSumState)
