"""Which axes of a leaf get a Kronecker factor, and the factors' running statistics.

For a leaf ``G`` and an axis ``i`` of size ``n``, the factor statistic is the ``n × n`` matrix
``G_(i) G_(i)ᴴ``: the contraction of ``G`` with its conjugate over every other axis (for a matrix,
``G Gᴴ`` on axis 0 and ``Gᵀ Ḡ = (Gᴴ G)ᵀ`` on axis 1; real leaves: ``G Gᵀ`` and ``Gᵀ G``).
An axis longer than ``max_precond_dim`` gets no factor (an ``n × n`` matrix and its
eigendecomposition would cost too much), nor do the axis of a 1-D leaf unless
``precondition_1d`` and a 0-d leaf; the preconditioners leave such axes as they are.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from gradchain.core.paths import format_path
from gradchain.wrappers.labels import _is_variable as is_variable, unwrap


def preconditioned_axes(shape, max_precond_dim: int, precondition_1d: bool) -> tuple:
    """For each axis of a leaf of ``shape``: True when it gets a factor (see the module
    docstring)."""
    if len(shape) == 1 and not precondition_1d:
        return (False,)
    return tuple(n <= max_precond_dim for n in shape)


def zero_factors(leaf, axes, dtype) -> tuple:
    """An ``n × n`` zero matrix in ``dtype`` per axis that gets a factor, None for the others."""
    return tuple(jnp.zeros((n, n), dtype) if on else None
                 for n, on in zip(jnp.shape(leaf), axes))


def identity_factors(leaf, axes, dtype) -> tuple:
    """An ``n × n`` identity in ``dtype`` per axis that gets a factor, None for the others."""
    return tuple(jnp.eye(n, dtype=dtype) if on else None
                 for n, on in zip(jnp.shape(leaf), axes))


def axis_covariance(g: jax.Array, axis: int) -> jax.Array:
    """``G_(i) G_(i)ᴴ`` for axis ``i``: ``Σ g[.., a, ..] conj(g[.., b, ..])`` over every other
    axis."""
    others = [a for a in range(g.ndim) if a != axis]
    return jnp.tensordot(g, jnp.conj(g), axes=(others, others))


def accumulate_factors(factors: tuple, g: jax.Array, decay, weight) -> tuple:
    """``H_i ← decay · H_i + weight · G_(i) G_(i)ᴴ`` for each factor (None stays None)."""
    return tuple(None if h is None else
                 (decay * h + weight * axis_covariance(g.astype(_promoted(g, h)), i)).astype(
                     h.dtype)
                 for i, h in enumerate(factors))


def factor_dtype(statistic_dtype) -> jnp.dtype:
    """The dtype a leaf's factor matrices are kept in: its statistics' dtype, at least float32
    (``eigh`` and ``qr`` have no bfloat16 or float16 form)."""
    return jnp.promote_types(statistic_dtype, jnp.float32)


def count_factors(factors: tuple) -> int:
    return sum(h is not None for h in factors)


def _promoted(g, h: Optional[jax.Array]):
    return jnp.promote_types(jnp.promote_types(g.dtype, h.dtype), jnp.float32)


def factor_shape(factors: tuple) -> tuple:
    """The shape of the leaf ``factors`` were made for, None for an axis without a factor."""
    return tuple(None if h is None else h.shape[0] for h in factors)


def without_variables(params):
    """``params`` with each Flax ``Variable`` replaced by the array it holds. A leaf's
    statistic here is a small tree (factors, bases), which must not end up inside a Variable
    (``nnx.Optimizer`` would turn it into a ``State``)."""
    return jax.tree.map(unwrap, params, is_leaf=is_variable)


def check_leaf_shapes(owner: str, updates, stats, shape_of) -> None:
    """Refuse an updates leaf whose shape is not the one its statistic was made for
    (``shape_of(stat)``, None for a size the statistic does not record), naming its path,
    instead of failing inside the rule on a broadcast."""
    try:
        per_leaf = jax.tree.structure(updates).flatten_up_to(stats)
    except (ValueError, TypeError):
        return  # another tree: the transformation's own check names where it differs
    leaves = jax.tree_util.tree_flatten_with_path(updates)[0]
    for (path, g), stat in zip(leaves, per_leaf):
        expected = shape_of(stat)
        shape = jnp.shape(g)
        if len(shape) != len(expected) or any(e is not None and e != n
                                               for e, n in zip(expected, shape)):
            shown = "(" + ", ".join("?" if e is None else str(e) for e in expected) + (
                ",)" if len(expected) == 1 else ")")
            raise ValueError(f"{owner}: updates leaf at {format_path(path)} has shape "
                             f"{shape}, the optimizer state has {shown}")
