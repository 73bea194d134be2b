"""Eigenbases of Kronecker factors, their refresh, and products along a leaf's axes.

SOAP (Vyas et al. 2024) runs Adam in the basis ``Q_i`` of each factor's eigenvectors. The basis
is computed once by ``eigh`` and then refreshed every few steps by one step of power iteration
followed by a QR decomposition (the paper's Algorithm 4, the authors' ``get_orthogonal_matrix_QR``):

    order = argsort(diag(Qᴴ H Q), descending);  Q ← qr(H · Q[:, order]).Q

The estimated eigenvalues ``diag(Qᴴ H Q)`` keep the columns ordered by decreasing eigenvalue,
and whatever is stored per eigen-direction (SOAP's second moment) is permuted with them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def eigenbasis(matrix: jax.Array) -> jax.Array:
    """The eigenvectors of a symmetric (Hermitian) ``matrix`` as columns, by decreasing
    eigenvalue."""
    return jnp.linalg.eigh(matrix)[1][:, ::-1]


def refresh_eigenbasis(matrix: jax.Array, basis: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One power-iteration step with QR from ``basis`` (module docstring); returns the new basis
    and ``order``, the permutation applied to the old basis's columns (ties keep their order)."""
    estimates = jnp.real(jnp.sum(jnp.conj(basis) * (matrix @ basis), axis=0))
    order = jnp.argsort(-estimates, stable=True)
    return jnp.linalg.qr(matrix @ basis[:, order])[0], order


def multiply_axes(x: jax.Array, matrices: tuple, *, adjoint: bool = False) -> jax.Array:
    """``x ×_i M_i`` for each axis ``i`` with a matrix (None: the axis is left as it is):
    ``(x ×_i M)[.., a, ..] = Σ_b M[a, b] x[.., b, ..]``; with ``adjoint``, ``M_iᴴ`` instead.

    For a matrix ``G``: ``multiply_axes(G, (A, B)) = A G Bᵀ``. Rotating into SOAP's eigenbases is
    ``adjoint=True`` (``Q_Lᴴ G Q̄_R``, for real bases ``Q_Lᵀ G Q_R``), rotating back is the plain
    product.
    """
    for axis, m in enumerate(matrices):
        if m is None:
            continue
        m = jnp.conj(m.T) if adjoint else m
        x = jnp.moveaxis(jnp.tensordot(m.astype(jnp.result_type(m, x)), x, axes=([1], [axis])),
                         0, axis)
    return x
