"""Adagrad's preconditioner: divide by the root of the summed squares."""

from __future__ import annotations

from gradchain.combinators.branch import divide_by_sqrt
from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.core.validation import check_not_schedule, check_range
from gradchain.moments.accumulate import accumulate
from gradchain.moments.square import square
from gradchain.preconditioners.rms import eps_placement
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def scale_by_rss(initial_accumulator_value=0.1, eps: ScalarOrSchedule = 1e-7, *,
                 eps_in_sqrt: bool = True, accumulator_dtype=None) -> GradientTransformation:
    """``s_t = s_{t-1} + g_t²``, ``s_0 = initial_accumulator_value``; ``out = g_t / √(s_t + ε)``
    (``eps_in_sqrt=True``, Optax) or ``g_t / (√s_t + ε)`` (``eps_in_sqrt=False``, torch).

    Duchi et al. 2011. Defaults are Optax's; ``torch.optim.Adagrad`` is
    ``scale_by_rss(0.0, 1e-10, eps_in_sqrt=False)``.

    Args:
      initial_accumulator_value: ``s_0 >= 0``.
      eps: ε ``>= 0``.
      eps_in_sqrt: ε inside the root (Optax) or added to it (torch).
      accumulator_dtype: dtype of ``s`` (default: the params' real dtype).

    Returns:
      A ``GradientTransformation``: ``divide_by_sqrt`` of the gradient by ``s``; its state is a
      ``BranchState`` holding the ``AccumulateState`` of ``s``.
    """
    check_range("scale_by_rss", "initial_accumulator_value", initial_accumulator_value, 0)
    check_range("scale_by_rss", "eps", eps, 0)
    check_not_schedule("scale_by_rss", "initial_accumulator_value", initial_accumulator_value)
    return divide_by_sqrt(
        identity(),
        chain(square(dtype=accumulator_dtype),
              accumulate(initial_value=initial_accumulator_value, dtype=accumulator_dtype,
                         real=True)),
        **eps_placement(eps, eps_in_sqrt))
