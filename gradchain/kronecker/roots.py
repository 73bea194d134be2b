"""Inverse p-th roots of symmetric positive semi-definite matrices, ``(H + εI)^(-1/p)``.

``H = V diag(λ) Vᴴ`` by ``eigh``; the root is ``V diag((λ + ε)^(-1/p)) Vᴴ``, with the eigenvalues
below ``eigh``'s accuracy (``n`` ulps of the largest; negative ones from rounding too) taken as 0,
so that the root does not depend on their rounding errors. Its derivative is written out (the Daleckii-Krein
formula) instead of differentiating through ``eigh``, whose eigenvector derivative divides by
``λ_i - λ_j`` and is infinite where eigenvalues repeat, which Shampoo's statistics of few
gradients always have (a rank-one ``g gᵀ``). The matrix function itself is smooth there:

    d f(H) = V (F ∘ (Vᴴ dH V)) Vᴴ,    F_ij = (f(λ_i) - f(λ_j)) / (λ_i - λ_j),   F_ii = f'(λ_i),

with the divided differences evaluated as ``f(λ_j) · expm1(-r · log1p((λ_i - λ_j)/(λ_j + ε)))
/ (λ_i - λ_j)`` (``r = 1/p``), which loses no digits when ``λ_i`` and ``λ_j`` are close.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _adjoint(m):
    return jnp.conj(jnp.swapaxes(m, -1, -2))


def _spectrum(matrix, eps, p):
    values, vectors = jnp.linalg.eigh(matrix)
    # Below eigh's accuracy (n ulps of the largest eigenvalue) an eigenvalue is indistinguishable
    # from 0, and is taken as 0: otherwise its rounding error, divided by ε, would decide the
    # root in that direction (an error of 1e-16 ‖H‖ / ε, relative).
    noise = values.shape[-1] * jnp.finfo(values.dtype).eps * jnp.max(jnp.abs(values))
    shifted = jnp.where(values > noise, values, 0) + eps
    return shifted, vectors, shifted ** (-1.0 / p)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def inverse_root(matrix: jax.Array, eps, p: int) -> jax.Array:
    """``(H + εI)^(-1/p)`` of a symmetric (Hermitian) positive semi-definite ``H``.

    Args:
      matrix: ``H``, ``n × n``, real symmetric or complex Hermitian, in at least float32.
      eps: ε > 0, the ridge that keeps the root finite (a scalar; may be traced).
      p: the root's order, a positive Python integer (Shampoo: twice the number of factors).
    """
    _, vectors, roots = _spectrum(matrix, eps, p)
    return (vectors * roots.astype(vectors.dtype)) @ _adjoint(vectors)


@inverse_root.defjvp
def _inverse_root_jvp(p, primals, tangents):
    matrix, eps = primals
    d_matrix, d_eps = tangents
    shifted, vectors, roots = _spectrum(matrix, eps, p)
    rate = 1.0 / p
    gap = shifted[:, None] - shifted[None, :]
    same = gap == 0
    safe_gap = jnp.where(same, 1.0, gap)
    divided = roots[None, :] * jnp.expm1(-rate * jnp.log1p(safe_gap / shifted[None, :])) / safe_gap
    slope = -rate * roots / shifted
    divided = jnp.where(same, slope[:, None], divided)
    d_matrix = (d_matrix + _adjoint(d_matrix)) / 2
    inner = _adjoint(vectors) @ d_matrix @ vectors
    inner = inner * divided.astype(inner.dtype) + jnp.diag(
        (slope * d_eps).astype(inner.dtype))
    out = (vectors * roots.astype(vectors.dtype)) @ _adjoint(vectors)
    return out, vectors @ inner @ _adjoint(vectors)
