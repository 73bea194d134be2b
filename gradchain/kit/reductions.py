"""Reductions over the whole tree, for ``cross_leaf`` rules: global norms, trust ratios, checks.

A reduction is a per-leaf partial (``leaf_fn(u)`` or ``leaf_fn(u, param)``, computed in the
leaf's compute dtype, at least float32) combined over the leaves, then over the devices of
``axis_name`` when the leaves are split across them (``gradchain.core.reductions``): the same
primitive gives the unsplit numbers under ``shard_map``/``pmap``.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.hyperparams import cast, compute_dtype
from gradchain.core.reductions import sum_over_devices
from gradchain.kit.signature import wants


class Reduction(NamedTuple):
    """A per-leaf partial and how partials combine (``"sum"`` or ``"max"``)."""
    leaf_fn: Callable
    combine: str

    def compute(self, updates: list, params: list, axis_name=None) -> jax.Array:
        """The reduction of the updates leaves (with their params leaves) over the tree and
        ``axis_name``."""
        takes_param = self.needs_params()
        partials = []
        for u, p in zip(updates, params):
            dtype = compute_dtype(u.dtype, *([] if p is None else [p.dtype]))
            args = (cast(u, dtype),) + ((cast(p, dtype),) if takes_param else ())
            partials.append(self.leaf_fn(*args))
        if self.combine == "sum":
            return sum_over_devices(partials, axis_name)
        total = functools.reduce(jnp.maximum, partials, -jnp.inf)
        return total if axis_name is None else jax.lax.pmax(total, axis_name)

    def needs_params(self) -> bool:
        return "param" in wants(self.leaf_fn, skip_first=True).names


def tree_sum(leaf_fn: Callable) -> Reduction:
    """``Σ_leaves leaf_fn(u[, param])`` (then ``psum`` over ``axis_name``): e.g. the squared
    global norm, ``tree_sum(lambda u: jnp.sum(u * u))``. 0 for no leaves.

    Args:
      leaf_fn: ``leaf_fn(u) -> scalar``, or ``leaf_fn(u, param)`` to read the params leaf.

    Returns:
      A ``Reduction`` for ``cross_leaf``'s ``reductions``.
    """
    _check_leaf_fn("tree_sum", leaf_fn)
    return Reduction(leaf_fn, "sum")


def tree_max(leaf_fn: Callable) -> Reduction:
    """``max_leaves leaf_fn(u[, param])`` (then ``pmax`` over ``axis_name``): e.g. the largest
    magnitude, ``tree_max(lambda u: jnp.max(jnp.abs(u)))``. ``-inf`` for no leaves.

    Args:
      leaf_fn: ``leaf_fn(u) -> scalar``, or ``leaf_fn(u, param)`` to read the params leaf.

    Returns:
      A ``Reduction`` for ``cross_leaf``'s ``reductions``.
    """
    _check_leaf_fn("tree_max", leaf_fn)
    return Reduction(leaf_fn, "max")


def _check_leaf_fn(owner: str, leaf_fn) -> None:
    if not callable(leaf_fn):
        raise TypeError(f"{owner}: leaf_fn={leaf_fn!r} is not callable; expected a function "
                        "of an updates leaf (and, by the name param, its params leaf) "
                        "returning a scalar")
    extra = set(wants(leaf_fn, skip_first=True).required) - {"param"}
    if extra:
        raise TypeError(f"{owner}: leaf_fn takes {sorted(extra)}; it may take only the updates "
                        "leaf and, by the name param, the params leaf")
