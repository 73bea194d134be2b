"""AdaBelief's second moment: the moving average of the gradient's squared deviation from its
moving average."""

from __future__ import annotations

from typing import NamedTuple

import jax

from gradchain.core.dtypes import abs_sq
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import elementwise
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "belief_second_moment"


class BeliefMomentState(NamedTuple):
    count: jax.Array
    nu: object
    hyperparams: dict


@public
def belief_second_moment(b2: ScalarOrSchedule = 0.999, eps_root: ScalarOrSchedule = 1e-16, *,
                         mean: str, dtype=None) -> GradientTransformation:
    """``s_t = β2 s_{t-1} + (1 - β2) |g_t - m_t|² + eps_root``, ``s_0 = 0``; outputs ``s_t``
    (Zhuang et al. 2020, "AdaBelief Optimizer", Algorithm 2: the "belief" in the gradient is
    its distance from the prediction ``m_t``).

    ``m_t`` is read, not kept: it is the first moment shared under the name ``mean``
    (``share(mean, ema(β1))`` earlier in the same update), so the optimizer stores it once.
    ``eps_root`` is added at every step and stays in ``s`` (the paper's and Optax's form). Not
    bias-corrected: follow it with ``bias_correction(β2)``.

    Args:
      b2: β2 in ``[0, 1)`` (a number, array or schedule).
      eps_root: ``>= 0``, added to ``s`` at every step.
      mean: the name the first moment is shared under.
      dtype: dtype of ``s`` (default: the params'; real for complex params).

    Returns:
      A ``GradientTransformation`` whose state is a ``BeliefMomentState`` (``count``, ``s`` as
      ``nu``, ``hyperparams`` with ``b2`` and ``eps_root``); it outputs ``s_t``.
    """
    check_range(NAME, "b2", b2, 0, 1, high_open=True)
    check_range(NAME, "eps_root", eps_root, 0)

    def rule(u, stat, b2, eps_root, weight, **shared):
        new = weight * abs_sq(u - shared[mean]) + b2 * stat + eps_root
        return new, new

    return elementwise(rule, name=NAME, hyperparams={"b2": b2, "eps_root": eps_root},
                       statistic=0.0, scalars=lambda b2: {"weight": 1 - b2}, reads=(mean,),
                       dtype=dtype, output_dtype="statistic", real_statistic=True,
                       state_type=BeliefMomentState)
