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


def identity_factors(leaf, axes, dtype, scale=1.0) -> tuple:
    """``scale · I`` (``n × n``, in ``dtype``) per axis that gets a factor, None for the
    others."""
    return tuple(scale * jnp.eye(n, dtype=dtype) if on else None
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
