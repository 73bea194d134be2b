"""The sign of the update: the direction of signSGD and Signum."""

from __future__ import annotations

import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.kit.rules import elementwise
from gradchain.core.transformation import GradientTransformation


@public
def scale_by_sign() -> GradientTransformation:
    """``u -> sign(u)`` entry by entry (Bernstein et al. 2018, signSGD): each coordinate moves
    by ±1 whatever the size of its gradient; 0 stays 0, a complex ``u`` becomes ``u/|u|``.

    Optax's ``scale_by_sign``. Stateless: before it, ``ema`` makes Signum's direction.

    Returns:
      A stateless ``GradientTransformation`` (its state holds no statistic) that outputs
      ``sign(u)``.
    """
    return elementwise(jnp.sign, name="scale_by_sign")
