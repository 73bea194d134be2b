"""Muon's matrix-wise steps: Newton-Schulz orthogonalization and the shape-dependent scale.

Both work on each leaf viewed as a stack of matrices: ``MuonDimensionNumbers`` name the axes
that play the matrix's input (``reduction_axis``) and output (``output_axis``) roles; every
other axis is a batch of independent matrices (a 3-D attention kernel, a 4-D convolution).
``weight_dimension_numbers`` (Optax's convention) is None (every leaf a 2-D ``(input, output)``
matrix), one ``MuonDimensionNumbers`` for all leaves, a prefix tree of them (None where a leaf is
left as it is), or a function of the updates returning such a tree. Each leaf needs its own
numbers, known only from the whole tree, so these two stages are tree-level transformations
(kit ``Contract``), and the per-matrix arithmetic is the plain function ``newton_schulz``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_choice, check_floating_dtype, check_range, \
    check_steps
from gradchain.kit.contract import Contract
from gradchain.core.hyperparams import ScalarOrSchedule

PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
NS_COEFFS_PRESETS = {
    "standard": (3.4445, -4.7750, 2.0315),
    "dion": ((4.0848, -6.8946, 2.9270), (3.9505, -6.3029, 2.6377), (3.7418, -5.5913, 2.3037),
             (2.8769, -3.1427, 1.2046), (2.8366, -3.0525, 1.2012)),
}


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a leaf are the matrix's input (contracted) and output axes; the others are
    batch axes. Optax's ``contrib.MuonDimensionNumbers`` (instances of either are accepted)."""
    reduction_axis: Union[Sequence[int], int] = 0
    output_axis: Union[Sequence[int], int] = 1


class OrthogonalizeState(NamedTuple):
    count: jax.Array
    hyperparams: dict


def is_dimension_numbers(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "reduction_axis") and hasattr(x, "output_axis")


def leaf_dimension_numbers(spec, updates) -> list:
    """The dimension numbers of each leaf of ``updates`` (flattened order; None: left as is)."""
    if spec is None:
        spec = MuonDimensionNumbers()
    dims = spec(updates) if callable(spec) and not is_dimension_numbers(spec) else spec
    is_leaf = lambda x: x is None or is_dimension_numbers(x)
    treedef = jax.tree.structure(dims, is_leaf=is_leaf)
    out = []
    for d, sub in zip(jax.tree.leaves(dims, is_leaf=is_leaf), treedef.flatten_up_to(updates)):
        out.extend([d] * len(jax.tree.leaves(sub)))
    return out


def _axes(ndim, dims) -> tuple:
    as_tuple = lambda a: (a,) if isinstance(a, int) else tuple(a)
    reduction = tuple(a % ndim for a in as_tuple(dims.reduction_axis))
    output = tuple(a % ndim for a in as_tuple(dims.output_axis))
    return reduction, output


def _check_rank(owner, x, dims):
    if x.ndim < 2:
        raise ValueError(f"{owner}: a leaf of shape {x.shape} has no matrix form; give it None "
                         "dimension numbers (or leave it to another transformation)")
    reduction, output = _axes(x.ndim, dims)
    if set(reduction) & set(output):
        raise ValueError(f"{owner}: reduction axes {reduction} and output axes {output} of a "
                         f"leaf of shape {x.shape} overlap")
    return reduction, output


def fans(shape, dims) -> tuple:
    """``(fan_in, fan_out)``: the sizes of the reduction and output axes."""
    reduction, output = _axes(len(shape), dims)
    return math.prod(shape[a] for a in reduction), math.prod(shape[a] for a in output)


def _as_matrices(x, reduction, output):
    batch = tuple(a for a in range(x.ndim) if a not in reduction + output)
    order = batch + reduction + output
    size = lambda axes: math.prod(x.shape[a] for a in axes)
    flat = x.transpose(order).reshape(size(batch), size(reduction), size(output))
    unflat_shape = tuple(x.shape[a] for a in order)
    inverse = tuple(sorted(range(x.ndim), key=lambda i: order[i]))
    return flat, lambda y: y.reshape(unflat_shape).transpose(inverse)


def _iteration(x, coeffs, first, preconditioning, eps):
    a = x @ x.T.conj()
    if first and preconditioning == "aol":
        s = jnp.expand_dims(jax.lax.rsqrt(jnp.clip(jnp.abs(a).sum(axis=-1), min=eps)), -1)
        x, a = x * s, a * s * s.transpose(-1, -2)
    elif first and preconditioning == "schatten":
        s = jnp.expand_dims(jax.lax.rsqrt(jnp.clip(jnp.linalg.norm(a, ord="fro"), min=eps)),
                            (0, -1))
        x, a = x * s, a * s ** 2
    b = coeffs[1] * a + coeffs[2] * a @ a
    return coeffs[0] * x + b @ x


def newton_schulz(x, coeffs, *, eps, preconditioning="frobenius", eps_floor=False):
    """The quintic Newton-Schulz iteration ``X <- c0 X + (c1 A + c2 A²) X``, ``A = X Xᴴ``, on one
    matrix (Jordan et al. 2024): it maps the singular values of the normalised ``X`` towards 1,
    approximating the orthogonal factor ``U Vᴴ`` of ``X = U Σ Vᴴ``.

    ``coeffs``: rows ``(c0, c1, c2)``, one per iteration. The matrix is transposed first when it
    has more rows than columns (the iteration commutes with transposition). Normalised by
    ``‖X‖_F + ε`` (``frobenius``; ``max(‖X‖_F, ε)`` with ``eps_floor``, torch's), ``‖X‖₂ + ε``
    (``spectral``), or not, the first iteration rescaling instead (``aol``, ``schatten``), as
    Optax's ``orthogonalize_via_newton_schulz``.

    Args:
      x: one matrix.
      coeffs: a sequence of rows ``(c0, c1, c2)``, one per iteration.
      eps: ε of the normalisation (a scalar in ``x``'s dtype).
      preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"``.
      eps_floor: ``max(‖X‖_F, ε)`` instead of ``‖X‖_F + ε``.

    Returns:
      The orthogonalized matrix, of ``x``'s shape and dtype.
    """
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    if preconditioning == "frobenius":
        norm = jnp.linalg.norm(x, ord="fro")
        x = x / (jnp.maximum(norm, eps) if eps_floor else norm + eps)
    elif preconditioning == "spectral":
        x = x / (jnp.linalg.norm(x, ord=2) + eps)
    for i, row in enumerate(coeffs):
        x = _iteration(x, jnp.asarray(row, x.dtype), i == 0, preconditioning, eps)
    return x.T if transposed else x


def coefficient_rows(owner, ns_coeffs, ns_steps) -> tuple:
    """Optax's reading of ``ns_coeffs``: a preset name, one row ``(c0, c1, c2)`` used
    ``ns_steps`` times, or one row per iteration (at most ``ns_steps``; all of them are used)."""
    if isinstance(ns_coeffs, str):
        check_choice(owner, "ns_coeffs", ns_coeffs, tuple(NS_COEFFS_PRESETS))
        ns_coeffs = NS_COEFFS_PRESETS[ns_coeffs]
    rows = np.asarray(ns_coeffs, dtype=np.float64)
    if rows.ndim not in (1, 2) or rows.shape[-1] != 3:
        raise ValueError(f"{owner}: ns_coeffs must have shape (3,) or (n, 3), got {rows.shape}")
    if rows.ndim == 1:
        return tuple([tuple(rows.tolist())] * ns_steps)
    if rows.shape[0] > ns_steps:
        raise ValueError(f"{owner}: ns_coeffs has {rows.shape[0]} rows, more than "
                         f"ns_steps={ns_steps} iterations")
    return tuple(tuple(r) for r in rows.tolist())


@public
def orthogonalize(ns_coeffs=NS_COEFFS_PRESETS["standard"], ns_steps: int = 5,
                  eps: ScalarOrSchedule = 1e-8, preconditioning: str = "frobenius",
                  weight_dimension_numbers=None, *, adaptive: bool = False, eps_floor: bool = False,
                  ns_dtype=None) -> GradientTransformation:
    """Each leaf's matrices replaced by their Newton-Schulz orthogonalization (Muon's step).

    ``out = NS(u)`` per matrix of the leaf (``newton_schulz``; the matrices are given by the
    dimension numbers, see the module docstring); with ``adaptive``, ``⟨u, NS(u)⟩ · NS(u)``
    (Pethick et al. 2025). Optax's orthogonalization in ``contrib.scale_by_muon``.

    Args:
      ns_coeffs: ``(c0, c1, c2)``, a sequence of such rows (one per iteration), or a preset
        (``"standard"``, ``"dion"``).
      ns_steps: the number of iterations with a single row of coefficients.
      eps: ε ``>= 0`` of the normalisation; a number, array or schedule.
      preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"``.
      weight_dimension_numbers: see the module docstring.
      adaptive: scale by the inner product of the input and its orthogonalization.
      eps_floor: normalise by ``max(‖X‖_F, ε)`` (torch's Muon) instead of ``‖X‖_F + ε``.
      ns_dtype: the dtype the iteration runs in (torch's Muon: ``jnp.bfloat16``); None: the
        updates'.

    Returns:
      A ``GradientTransformation``; its state is ``OrthogonalizeState(count, hyperparams)``.
    """
    owner = "orthogonalize"
    ns_steps = check_steps(owner, "ns_steps", ns_steps, 1, what="iterations")
    rows = coefficient_rows(owner, ns_coeffs, ns_steps)
    check_choice(owner, "preconditioning", preconditioning, PRECONDITIONINGS)
    check_range(owner, "eps", eps, 0)
    check_floating_dtype(owner, "ns_dtype", ns_dtype)
    contract = Contract(owner, {"eps": eps})

    def leaf(x, dims, eps):
        if dims is None:
            return x
        reduction, output = _check_rank(owner, x, dims)
        matrices, restore = _as_matrices(x, reduction, output)
        work = matrices if ns_dtype is None else matrices.astype(ns_dtype)
        orthogonal = jax.vmap(lambda m: newton_schulz(
            m, rows, eps=eps.astype(m.dtype), preconditioning=preconditioning,
            eps_floor=eps_floor))(work)
        y = restore(orthogonal.astype(x.dtype))
        return jnp.sum(x.conj() * y) * y if adaptive else y

    def init(params):
        contract.check_params(params)
        return OrthogonalizeState(contract.init_count(), contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        del params, extra
        step = contract.begin(updates, state)
        leaves, treedef = jax.tree.flatten(updates)
        dims = leaf_dimension_numbers(weight_dimension_numbers, updates)
        eps_value = step.values["eps"]
        out = [leaf(x, d, eps_value) for x, d in zip(leaves, dims)]
        return treedef.unflatten(out), OrthogonalizeState(step.count, step.stored)

    return GradientTransformation(
        init, update, name=owner, state_type=OrthogonalizeState,
        hyperparams={"ns_coeffs": rows, "eps": eps, "preconditioning": preconditioning,
                     "adaptive": adaptive, "eps_floor": eps_floor})


@public
def scale_by_shape(weight_dimension_numbers=None, consistent_rms=None) -> GradientTransformation:
    """Each leaf scaled for its shape: ``√max(1, fan_out/fan_in)`` (width transfer, Optax's and
    torch's default), or ``ρ √max(fan_in, fan_out)`` with ``consistent_rms=ρ`` (an update RMS
    like AdamW's; torch's ``adjust_lr_fn="match_rms_adamw"`` is ρ = 0.2). Fans from the
    dimension numbers (module docstring); leaves with None are left as they are. Optax's
    ``contrib._muon.scale_by_shape``.

    Args:
      weight_dimension_numbers: see the module docstring.
      consistent_rms: ρ ``>= 0``, or None.

    Returns:
      A ``GradientTransformation``; its state is ``OrthogonalizeState(count, hyperparams)``.
    """
    if consistent_rms is not None:
        check_range("scale_by_shape", "consistent_rms", consistent_rms, 0)
    contract = Contract("scale_by_shape",
                        {} if consistent_rms is None else {"consistent_rms": consistent_rms})

    def leaf(x, dims, values):
        if dims is None:
            return x
        fan_in, fan_out = fans(x.shape, dims)
        if "consistent_rms" in values:
            factor = jnp.sqrt(jnp.maximum(fan_in, fan_out)) * values["consistent_rms"]
            return (factor * x).astype(x.dtype)
        return jnp.sqrt(jnp.maximum(1, fan_out / fan_in)) * x

    def init(params):
        contract.check_params(params)
        return OrthogonalizeState(contract.init_count(), contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        del params, extra
        step = contract.begin(updates, state)
        leaves, treedef = jax.tree.flatten(updates)
        dims = leaf_dimension_numbers(weight_dimension_numbers, updates)
        out = [leaf(x, d, step.values) for x, d in zip(leaves, dims)]
        return treedef.unflatten(out), OrthogonalizeState(step.count, step.stored)

    return GradientTransformation(init, update, name="scale_by_shape",
                                  state_type=OrthogonalizeState,
                                  hyperparams={"consistent_rms": consistent_rms})
