"""A direction times a per-parameter step size, each computed by its own sub-chain."""

from __future__ import annotations

import jax.numpy as jnp

from gradchain.combinators.branch import branch
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_transformations


def _product(direction, step_size):
    return direction * jnp.where(direction == 0, 0, step_size)


@public
def per_parameter_step(direction, step_size) -> GradientTransformation:
    """``out = D(u) · S(u)`` leaf by leaf, for a direction sub-chain ``D`` and a step-size
    sub-chain ``S`` fed the same updates.

    The form of the methods that bound or rectify Adam's adaptive learning rate
    ``1/(√v̂ + ε)`` before using it: the step size is a statistic of its own, so a primitive can
    act on it alone (``clip_lr`` for AdaBound, ``rectified_step_size`` for RAdam) while the
    direction (a first moment, with or without Nesterov) is chosen separately. With ``D`` the
    first moment and ``S = chain(second_moment(), rectified_step_size())`` it is RAdam's
    ``r_t · m̂ / (√v̂ + ε)``.

    A zero direction gives a zero update even where the step size is infinite (``ε = 0`` and
    ``v = 0``, a leaf that has seen only zero gradients): ``0 · ∞`` is 0 here, not NaN.

    Args:
      direction: the transformation giving the direction ``D(u)``.
      step_size: the transformation giving the step size ``S(u)``.

    Returns:
      A ``GradientTransformation`` whose state is a ``BranchState`` holding the two
      sub-chains' states (``branches``).
    """
    check_transformations("per_parameter_step", {"direction": direction, "step_size": step_size})
    return branch(direction, step_size, combine=_product, name="per_parameter_step")
