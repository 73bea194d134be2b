"""AdaMax's preconditioner: the first moment over the infinity moment."""

from __future__ import annotations

import jax.numpy as jnp

from gradchain.combinators.branch import branch
from gradchain.core.public import public
from gradchain.moments.infinity_moment import infinity_moment
from gradchain.preconditioners.adam import first_moment
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


def _divide(m, v):
    # max(v, tiny): 0/0 is 0 (a leaf that has seen only zero gradients with eps = 0), and
    # nothing else changes unless v is subnormal (as divide_by_sqrt).
    return m / jnp.maximum(v, jnp.finfo(v.dtype).tiny)


@public
def scale_by_adamax(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
                    eps: ScalarOrSchedule = 1e-8) -> GradientTransformation:
    """``out = m̂_t / v_t`` (Kingma & Ba 2015, AdaMax), with ``m̂_t`` Adam's bias-corrected first
    moment and ``v_t = max(|g_t| + ε, β2 v_{t-1})``.

    ``branch(first_moment(β1), infinity_moment(β2, ε), combine=m̂ / v)``. Arguments, defaults
    and numbers are Optax's ``scale_by_adamax``.

    Args:
      b1: β1 in ``[0, 1)``, the decay of the first moment.
      b2: β2 in ``[0, 1]``, the decay of the infinity moment.
      eps: ε ``>= 0``, added to ``|g|`` inside the maximum.

    Returns:
      A ``GradientTransformation`` whose state is a ``BranchState``: the first moment's
      ``EmaState`` (with its bias correction's count) and the ``InfinityMomentState`` of ``v``.
    """
    return branch(first_moment(b1), infinity_moment(b2, eps), combine=_divide,
                  name="scale_by_adamax")
