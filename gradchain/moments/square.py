"""Elementwise square: the input of every second-moment statistic."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradchain.core import quantized
from gradchain.core.transformation import EmptyState, GradientTransformation
from gradchain.core.validation import check_floating, check_floating_dtype


def square(*, dtype=None) -> GradientTransformation:
    """``x -> x²``, computed in ``dtype`` if given (use float32 for float16 gradients, whose
    squares underflow), else in the updates' dtype; a ``quantized(...)`` format computes in
    float32, the dtype it decodes to."""
    check_floating_dtype("square", "dtype", dtype)
    dtype = quantized.compute_view(dtype)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del params, extra
        check_floating("square", updates, "updates")
        return jax.tree.map(lambda g: jnp.square(g.astype(dtype or g.dtype)), updates), state

    return GradientTransformation(init, update, name="square",
                                  hyperparams={} if dtype is None else {"dtype": dtype})
