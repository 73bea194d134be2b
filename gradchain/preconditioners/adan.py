"""Adan's preconditioner: Nesterov momentum estimated from gradient differences."""

from __future__ import annotations

from gradchain.combinators.branch import branch, divide_by_sqrt
from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import elementwise
from gradchain.kit.shared import share
from gradchain.moments.bias_correction import bias_correction
from gradchain.moments.ema import ema
from gradchain.moments.gradient_difference import gradient_difference
from gradchain.moments.square import square
from gradchain.preconditioners.adam import first_moment
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

DIFFERENCE = "adan_gradient_difference"


@public
def scale_by_adan(b1: ScalarOrSchedule = 0.98, b2: ScalarOrSchedule = 0.92,
                  b3: ScalarOrSchedule = 0.99, eps: ScalarOrSchedule = 1e-8,
                  eps_root: ScalarOrSchedule = 0.0) -> GradientTransformation:
    """Adan's step (Xie et al. 2022, "Adan: Adaptive Nesterov Momentum Algorithm", Algorithm 1
    with Optax's bias corrections), with ``d_t = g_t - g_{t-1}`` (``d_1 = 0``)::

        m_t = β1 m_{t-1} + (1 - β1) g_t
        v_t = β2 v_{t-1} + (1 - β2) d_t
        n_t = β3 n_{t-1} + (1 - β3) (g_t + (1 - β2) d_t)²
        out = (m̂_t + (1 - β2) v̂_t) / (√(n̂_t + eps_root) + ε)     (x̂_t = x_t / (1 - β^t))

    Each β is a decay, like Adam's (Optax's convention; the paper's β is its complement).
    ``d_t`` comes from one ``gradient_difference()``, shared (``share``) by the ``v`` and ``n``
    chains, so the previous gradient is stored once: the state holds ``m``, ``v``, ``n`` and
    ``g_{t-1}``, as Optax's. Arguments, defaults and numbers are Optax's ``scale_by_adan``.

    Args:
      b1: β1 in ``[0, 1)``, the decay of the gradients' average.
      b2: β2 in ``[0, 1)``, the decay of the differences' average.
      b3: β3 in ``[0, 1)``, the decay of the squared term's average.
      eps: ε ``>= 0``, added after the root.
      eps_root: ``>= 0``, added inside it.

    Returns:
      ``divide_by_sqrt(numerator, denominator, eps=ε, eps_root=...)``: a ``GradientTransformation``
      whose ``BranchState`` holds ``m``, ``v`` (with the shared previous gradient) and ``n``, each
      with its bias correction's count.
    """
    check_range("scale_by_adan", "b2", b2, 0, 1, high_open=True)
    check_range("scale_by_adan", "b3", b3, 0, 1, high_open=True)
    differences = chain(share(DIFFERENCE, gradient_difference()),
                        ema(b2, hyperparam_name="b2"), bias_correction(b2, hyperparam_name="b2"))
    numerator = branch(first_moment(b1), differences,
                       combine=lambda m, v, b2: m + (1 - b2) * v, name="adan_momentum", b2=b2)
    look_ahead = elementwise(lambda u, b2, **shared: u + (1 - b2) * shared[DIFFERENCE],
                             name="adan_look_ahead", hyperparams={"b2": b2},
                             reads=(DIFFERENCE,))
    denominator = chain(look_ahead, square(), ema(b3, hyperparam_name="b3", real=True),
                        bias_correction(b3, hyperparam_name="b3"))
    return divide_by_sqrt(numerator, denominator, eps=eps, eps_root=eps_root)
