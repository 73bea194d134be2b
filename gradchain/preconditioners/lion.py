"""Lion's direction: the sign of an interpolation between the momentum and the gradient."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import elementwise
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "scale_by_lion"


class LionState(NamedTuple):
    count: jax.Array
    mu: object
    hyperparams: dict


@public
def scale_by_lion(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.99,
                  mu_dtype=None) -> GradientTransformation:
    """Lion's update direction (Chen et al. 2023, "Symbolic Discovery of Optimization
    Algorithms", Algorithm 2), one stateful rule per entry::

        c_t = β1 · m_{t-1} + (1 - β1) · g_t        out = sign(c_t)
        m_t = β2 · m_{t-1} + (1 - β2) · g_t        (m_0 = 0)

    The direction interpolates with the momentum of the previous step and the momentum is then
    updated with its own rate β2; only ``m`` is kept. Arguments, defaults and numbers are
    Optax's ``scale_by_lion`` (its default ``mode="hard"``).

    Args:
      b1: β1, the interpolation weight of the momentum in the direction, in ``[0, 1]``.
      b2: β2, the decay of the momentum, in ``[0, 1]``.
      mu_dtype: dtype of ``m`` (default: the params').

    Returns:
      A ``GradientTransformation`` whose state is a ``LionState`` (``count``, ``mu``,
      ``hyperparams`` with ``b1`` and ``b2``); it outputs ``sign(c_t)``.
    """
    check_range(NAME, "b1", b1, 0, 1)
    check_range(NAME, "b2", b2, 0, 1)

    def rule(u, stat, b1, b2, direction_weight, moment_weight):
        direction = jnp.sign(direction_weight * u + b1 * stat)
        return direction, moment_weight * u + b2 * stat

    return elementwise(
        rule, name=NAME, hyperparams={"b1": b1, "b2": b2}, statistic=0.0, dtype=mu_dtype,
        scalars=lambda b1, b2: {"direction_weight": 1 - b1, "moment_weight": 1 - b2},
        state_type=LionState)
