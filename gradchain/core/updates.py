"""Applying updates to params."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradchain.core.validation import check_same_shapes, check_same_structure


def apply_updates(params, updates):
    """``θ + u`` leaf by leaf; each result keeps its param's dtype (the sum is rounded once).

    A ``None`` update leaves its param unchanged. Updates must have the params' tree and shapes
    (a mismatch raises ``ValueError`` naming the path, rather than broadcasting the params).
    """
    given = jax.tree.map(lambda u: u is not None, updates, is_leaf=lambda x: x is None)
    check_same_structure("apply_updates", given, params, "params")
    check_same_shapes("apply_updates", updates, params, "params")
    return jax.tree.map(
        lambda p, u: p if u is None else jnp.asarray(p + u).astype(jnp.result_type(p)),
        params, updates, is_leaf=lambda x: x is None)
