"""What the averaging wrappers share: the params an update produces, folded into a running
average kept in the state."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import real_dtype
from gradchain.core.hyperparams import cast, compute_dtype


def init_average(params, dtype):
    """The average before any update: a copy of the params, in ``dtype`` (None: theirs)."""
    return jax.tree.map(lambda p: jnp.array(p, dtype=dtype or jnp.result_type(p), copy=True),
                        params)


def fold(average, params, updates, weight_of_new):
    """``a + w (θ + u - a)`` leaf by leaf, computed in at least float32 and kept in the
    average's dtype; ``w`` is a scalar, and ``w = 1`` copies the new params exactly (the
    average restarts there, as PyTorch's first ``update_parameters`` copies them)."""

    def leaf(a, p, u):
        dtype = compute_dtype(a.dtype, p.dtype, u.dtype)
        new = p.astype(dtype) + u.astype(dtype)
        w = cast(weight_of_new, real_dtype(dtype))
        moved = a.astype(dtype) + w * (new - a.astype(dtype))
        return cast(jnp.where(w == 1, new, moved), a.dtype)

    return jax.tree.map(leaf, average, params, updates)


def eval_params(average, params):
    """The average, leaf by leaf in each param's dtype."""
    return jax.tree.map(lambda a, p: cast(a, jnp.result_type(p)), average, params)
