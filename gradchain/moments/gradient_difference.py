"""The change of the gradient since the previous update (Adan, optimistic gradient descent)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.kit.rules import elementwise
from gradchain.core.transformation import GradientTransformation


class GradientDifferenceState(NamedTuple):
    count: jax.Array
    prev_grad: object
    hyperparams: dict


@public
def gradient_difference(*, dtype=None) -> GradientTransformation:
    """``out = g_t - g_{t-1}``, 0 at the first update (there is no previous gradient yet).

    Keeps the previous gradient (``prev_grad``, once per param). Adan's second moment is an EMA
    of it, and ``α g_t + β (g_t - g_{t-1})`` is the optimistic gradient; share it
    (``share``) when several parts read it.

    Args:
      dtype: dtype of ``prev_grad`` (default: the params').

    Returns:
      A ``GradientTransformation`` whose state is a ``GradientDifferenceState`` (``count``,
      ``prev_grad``, ``hyperparams``); it outputs ``g_t - g_{t-1}``.
    """
    def rule(u, stat, step):
        return jnp.where(step == 1, jnp.zeros_like(u), u - stat), u

    return elementwise(rule, name="gradient_difference", statistic=0.0, dtype=dtype,
                       state_type=GradientDifferenceState)
