"""Yogi's preconditioner: Adam's step with Yogi's second moment."""

from __future__ import annotations

from gradchain.combinators.branch import divide_by_sqrt
from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.moments.bias_correction import bias_correction
from gradchain.moments.ema import ema
from gradchain.moments.square import square
from gradchain.moments.yogi import yogi_second_moment
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def scale_by_yogi(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
                  eps: ScalarOrSchedule = 1e-3, eps_root: ScalarOrSchedule = 0.0,
                  initial_accumulator_value=1e-6) -> GradientTransformation:
    """``out = m̂_t / (√(v̂_t + eps_root) + ε)`` (Zaheer et al. 2018, Yogi) with::

        m_t = β1 m_{t-1} + (1 - β1) g_t                        m̂_t = m_t / (1 - β1^t)
        v_t = v_{t-1} - (1 - β2) sign(v_{t-1} - g_t²) g_t²      v̂_t = v_t / (1 - β2^t)

    both started at ``initial_accumulator_value``: ``divide_by_sqrt(chain(ema(β1, v_0),
    bias_correction(β1)), chain(square(), yogi_second_moment(β2, v_0), bias_correction(β2)))``.
    Arguments, defaults and numbers are Optax's ``scale_by_yogi`` (``g²`` is ``|g|²`` for
    complex leaves).

    Args:
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      eps: ε ``>= 0``, added after the root.
      eps_root: ``>= 0``, added inside it.
      initial_accumulator_value: ``m_0 = v_0 > 0``.

    Returns:
      ``divide_by_sqrt(...)`` above: a ``GradientTransformation`` whose ``BranchState`` holds the
      ``EmaState`` of ``m`` and the ``YogiMomentState`` of ``v``, with their bias corrections'
      counts.
    """
    check_range("scale_by_yogi", "b1", b1, 0, 1, high_open=True)
    check_range("scale_by_yogi", "b2", b2, 0, 1, high_open=True)
    numerator = chain(ema(b1, initial_value=initial_accumulator_value, hyperparam_name="b1"),
                      bias_correction(b1, hyperparam_name="b1"))
    denominator = chain(square(), yogi_second_moment(b2, initial_value=initial_accumulator_value),
                        bias_correction(b2, hyperparam_name="b2"))
    return divide_by_sqrt(numerator, denominator, eps=eps, eps_root=eps_root)
