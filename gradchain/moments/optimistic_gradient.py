"""The optimistic gradient: the gradient extrapolated along its last change."""

from __future__ import annotations

from gradchain.combinators.branch import branch
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.core.validation import check_range
from gradchain.moments.gradient_difference import gradient_difference
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "scale_by_optimistic_gradient"


@public
def scale_by_optimistic_gradient(alpha: ScalarOrSchedule = 1.0,
                                 beta: ScalarOrSchedule = 1.0) -> GradientTransformation:
    """``out = α g_t + β (g_t - g_{t-1})`` (``g_t - g_{t-1} = 0`` at the first update), which is
    Optax's ``(α + β) g_t - β g_{t-1}`` with ``g_0 = g_1`` (Mokhtari et al. 2019; Daskalakis
    et al. 2018, optimistic gradient descent).

    ``branch(identity(), gradient_difference(), combine=α·g + β·d)``: keeps the previous
    gradient once per param. Arguments and defaults are Optax's
    ``scale_by_optimistic_gradient``.

    Args:
      alpha: α ``>= 0``, the weight of the gradient (a number, array or schedule).
      beta: β ``>= 0``, the weight of its change, the "negative momentum".

    Returns:
      A ``GradientTransformation`` whose state is a ``BranchState``: the identity's empty state
      and the ``GradientDifferenceState`` holding ``g_{t-1}``; ``alpha`` and ``beta`` in its
      ``hyperparams``.
    """
    check_range(NAME, "alpha", alpha, 0)
    check_range(NAME, "beta", beta, 0)
    return branch(identity(), gradient_difference(),
                  combine=lambda g, change, alpha, beta: alpha * g + beta * change,
                  name=NAME, alpha=alpha, beta=beta)
