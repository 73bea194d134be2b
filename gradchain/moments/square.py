"""Elementwise square: the input of every second-moment statistic."""

from __future__ import annotations

import jax

from gradchain.core import quantized
from gradchain.core.dtypes import abs_sq, complex_dtype, is_complex
from gradchain.core.paths import format_path
from gradchain.core.public import public
from gradchain.core.transformation import EmptyState, GradientTransformation
from gradchain.core.validation import check_floating, check_floating_dtype


@public
def square(*, dtype=None) -> GradientTransformation:
    """``x -> |x|²``: ``x²`` for real updates, ``Re(x)² + Im(x)²`` (real) for complex ones, the
    convention of Optax's second moments (``optax.tree.update_moment_per_elem_norm``).

    Computed in the precision of ``dtype`` if given (use float32 for float16 gradients, whose
    squares underflow; complex updates are then taken in the complex dtype of that precision),
    else in the updates' precision; the output is real. A ``quantized(...)`` format computes in
    float32, the dtype it decodes to.

    Args:
      dtype: the precision to square in (default: the updates'), or a ``quantized`` format.

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState()``).
    """
    check_floating_dtype("square", "dtype", dtype)
    dtype = quantized.compute_view(dtype)

    def leaf(path, g):
        if dtype is None:
            return abs_sq(g)
        if is_complex(g.dtype):
            where = f"updates leaf at {format_path(path)}"
            return abs_sq(g.astype(complex_dtype("square", dtype, where)))
        return abs_sq(g.astype(dtype))

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del params, extra
        check_floating("square", updates, "updates")
        return jax.tree_util.tree_map_with_path(leaf, updates), state

    return GradientTransformation(init, update, name="square",
                                  hyperparams={} if dtype is None else {"dtype": dtype},
                                  state_type=EmptyState)
