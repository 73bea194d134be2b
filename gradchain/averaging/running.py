"""What the averaging wrappers share: run the inner optimizer, then fold the params it produces
into a running average kept in the state."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import real_dtype
from gradchain.core.hyperparams import cast, compute_dtype
from gradchain.core.validation import check_floating, check_same_shapes, check_same_structure


def check_params(owner: str, updates, params) -> None:
    """Averaging needs the params: refuse an update without them, or with another tree."""
    if params is None:
        raise ValueError(f"{owner}: update needs params (call update(updates, state, params))")
    check_same_structure(owner, updates, params, "params")
    check_same_shapes(owner, updates, params, "params")


def init_average(owner: str, params, dtype):
    """The average before any update: a copy of the params, in ``dtype`` (None: theirs)."""
    check_floating(owner, params)
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
