"""Running sum: Adagrad's accumulated sum of squared gradients."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.public import public
from gradchain.core.validation import check_not_schedule, check_range
from gradchain.core.transformation import GradientTransformation


class AccumulateState(NamedTuple):
    count: jax.Array
    total: object
    hyperparams: dict


@public
def accumulate(*, initial_value=0.0, dtype=None, real: bool = False) -> GradientTransformation:
    """Running sum ``s_t = s_{t-1} + x_t`` with ``s_0 = initial_value``; outputs ``s_t``.

    After ``square()`` it is Adagrad's sum of squares. torch starts it at 0
    (``initial_accumulator_value``), Optax at 0.1. ``real=True``: the input is real (a square),
    so ``s`` is kept in the params' real dtype (float32 for complex64 params); complex updates
    are then refused.

    Args:
      initial_value: ``s_0 >= 0``.
      dtype: dtype of ``s`` (default: the params'); ``gc.quantized()`` for 8 bits.
      real: the input is real (a square): keep ``s`` in the params' real dtype.

    Returns:
      A ``GradientTransformation`` whose state is ``AccumulateState``: ``count``, ``total`` (the running sum ``s``, params-shaped) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    check_range("accumulate", "initial_value", initial_value, 0)
    check_not_schedule("accumulate", "initial_value", initial_value)
    return elementwise_transformation(
        "accumulate", AccumulateState,
        lambda g, s, p: (s + g, s + g),
        stat_init=lambda p, dt: jnp.full(jnp.shape(p), initial_value, dt),
        dtype=dtype, output="stat", real_statistic=real,
        real_input=("with real=True it keeps a real sum: feed it square()'s |g|², or leave "
                    "real=False for a complex one") if real else None,
        display={"initial_value": initial_value})
