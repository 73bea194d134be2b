"""AdEMAMix's preconditioners: Adam whose numerator mixes in a slow EMA (or the gradient)."""

from __future__ import annotations

from gradchain.combinators.branch import branch, divide_by_sqrt
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.core.validation import check_range
from gradchain.moments.ema import ema
from gradchain.moments.momentum_sum import momentum_sum
from gradchain.preconditioners.adam import first_moment, second_moment
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


def _mix(fast, slow, alpha):
    return fast + alpha * slow


@public
def scale_by_ademamix(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
                      b3: ScalarOrSchedule = 0.9999, alpha: ScalarOrSchedule = 6.0,
                      eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0,
                      mu_dtype=None) -> GradientTransformation:
    """``(m̂1_t + α m2_t) / (√(v̂_t + eps_root) + ε)`` (Pagliardini et al. 2024, AdEMAMix).

    ``m1`` is Adam's bias-corrected first moment (β1), ``m2`` a slow EMA (β3) left uncorrected
    so that it fills slowly, ``v̂`` Adam's second moment (β2):
    ``divide_by_sqrt(branch(first_moment(β1), ema(β3), combine=m1 + α m2), second_moment(β2))``.
    Optax's ``contrib.scale_by_ademamix`` (arguments, defaults and numbers; ``mu_dtype`` sets
    all three statistics, as there).

    Args:
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      b3: β3 in ``[0, 1]``; a number, array or schedule (the paper warms it up).
      alpha: α ``>= 0``; a number, array or schedule.
      eps: ε ``>= 0``, added to the root.
      eps_root: ``>= 0``, added under the root.
      mu_dtype: dtype of the moments (default: the params').

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts'
      states).
    """
    check_range("scale_by_ademamix", "alpha", alpha, 0)
    numerator = branch(first_moment(b1, dtype=mu_dtype),
                       ema(b3, dtype=mu_dtype, hyperparam_name="b3"),
                       combine=_mix, name="ademamix_numerator", alpha=alpha)
    return divide_by_sqrt(numerator, second_moment(b2, dtype=mu_dtype), eps=eps,
                          eps_root=eps_root)


@public
def scale_by_simplified_ademamix(b1: ScalarOrSchedule = 0.99, b2: ScalarOrSchedule = 0.95,
                                 alpha: ScalarOrSchedule = 0.0, eps: ScalarOrSchedule = 1e-8,
                                 eps_root: ScalarOrSchedule = 0.0) -> GradientTransformation:
    """``(m_t + α g_t) / (√(v̂_t + eps_root) + ε)``, ``m_t = β1 m_{t-1} + g_t`` (Morwani et al.
    2025, simplified AdEMAMix).

    ``divide_by_sqrt(branch(momentum_sum(β1), identity(), combine=m + α g), second_moment(β2))``.
    Optax's ``contrib.scale_by_simplified_ademamix`` (arguments, defaults and numbers).

    Args:
      b1: β1 in ``[0, 1]``.
      b2: β2 in ``[0, 1)``.
      alpha: α ``>= 0``; a number, array or schedule.
      eps: ε ``>= 0``, added to the root.
      eps_root: ``>= 0``, added under the root.

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts'
      states).
    """
    check_range("scale_by_simplified_ademamix", "alpha", alpha, 0)
    numerator = branch(momentum_sum(b1, hyperparam_name="b1"), identity(), combine=_mix,
                       name="simplified_ademamix_numerator", alpha=alpha)
    return divide_by_sqrt(numerator, second_moment(b2), eps=eps, eps_root=eps_root)
