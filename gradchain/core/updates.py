"""Applying updates to params."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradchain.core.paths import format_path
from gradchain.core.validation import (check_same_shapes, check_same_structure, is_none,
                                       structure_difference)


def apply_updates(params, updates):
    """``θ + u`` leaf by leaf; each result keeps its param's dtype (the sum is rounded once).

    A ``None`` update leaves whatever the params hold there unchanged (a leaf, a ``None``, a
    subtree), so the updates of params with ``None`` leaves, or of a gradient tree with ``None``
    where nothing is trained, apply as they come out of ``update``. Otherwise the updates must
    have the params' tree and shapes: a mismatch raises ``ValueError`` naming the path, rather
    than broadcasting the params.

    Args:
      params: a pytree of arrays.
      updates: the updates an optimizer returned, of the params' tree and shapes (``None``
        where nothing changes).

    Returns:
      The new params, each leaf in its param's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, 2.0]), "frozen": jnp.array([3.0])}
      >>> new = gc.apply_updates(params, {"w": jnp.array([0.5, -0.5]), "frozen": None})
      >>> new["w"].tolist(), new["frozen"].tolist()
      ([1.5, 1.5], [3.0])
    """
    treedef = jax.tree.structure(updates, is_leaf=is_none)
    try:
        targets = treedef.flatten_up_to(params)
    except (ValueError, TypeError):
        raise ValueError("apply_updates: the updates do not match the params: "
                         + structure_difference(updates, params, "params", is_none)) from None
    paths = jax.tree_util.tree_flatten_with_path(updates, is_leaf=is_none)[0]
    new = []
    for (path, u), p in zip(paths, targets):
        if u is None:
            new.append(p)
            continue
        if not jax.tree_util.all_leaves([p]):
            held = "None" if p is None else "a subtree"
            raise ValueError(f"apply_updates: updates leaf at {format_path(path)} "
                             f"is an array, the params hold {held} there")
        if jnp.shape(u) != jnp.shape(p):
            raise ValueError(f"apply_updates: updates leaf at {format_path(path)} has "
                             f"shape {jnp.shape(u)}, the params have {jnp.shape(p)}")
        new.append(jnp.asarray(p + u).astype(jnp.result_type(p)))
    return treedef.unflatten(new)


def update_dtype(update, param):
    """The dtype of a final update leaf: its param's when params are given (bfloat16 params get
    bfloat16 updates whatever the gradients' dtype), else the incoming update's."""
    return jnp.result_type(update if param is None else param)


def matching_params(owner: str, updates, params) -> list:
    """The params leaf that goes with each leaf of ``updates`` (all ``None`` when no params are
    given), after checking that the params have the updates' tree and shapes."""
    leaves, treedef = jax.tree.flatten(updates)
    if params is None:
        return [None] * len(leaves)
    check_same_structure(owner, updates, params, "params")
    check_same_shapes(owner, updates, params, "params")
    return treedef.flatten_up_to(params)
