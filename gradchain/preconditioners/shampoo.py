"""Shampoo's preconditioner: an inverse root of a Kronecker factor along each axis, grafted."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.core.validation import (check_floating_dtype, check_range, check_steps,
                                       check_transformations, check_whole_number)
from gradchain.kronecker.eigenbasis import multiply_axes
from gradchain.kronecker.factors import (accumulate_factors, count_factors, identity_factors,
                                         preconditioned_axes, zero_factors)
from gradchain.kronecker.leafwise import leafwise_transformation, matrix_dtype
from gradchain.kronecker.roots import inverse_root
from gradchain.preconditioners.rss import scale_by_rss

NAME = "scale_by_shampoo"
GRAFTS = ("adagrad", "sgd")


class ShampooStatistics(NamedTuple):
    """One leaf's statistics: per axis, the factor ``H_i`` and its inverse root ``P_i`` as last
    computed (None where the axis gets no factor)."""
    factors: tuple
    roots: tuple


class ScaleByShampooState(NamedTuple):
    count: jax.Array
    graft_state: Any
    shampoo: Any
    hyperparams: dict


def _norm(x):
    return jnp.sqrt(jnp.sum(abs_sq(x)))


def _shampoo_leaf(g, stat: ShampooStatistics, step, b2, eps, precondition_frequency, graft):
    k = count_factors(stat.factors)
    if k == 0:
        return (g if graft is None else graft), stat
    dtype = jnp.promote_types(g.dtype, jnp.float32)
    g = g.astype(dtype)
    factors = accumulate_factors(stat.factors, g, b2, jnp.where(b2 == 1, 1.0, 1 - b2))
    period = jnp.round(precondition_frequency).astype(step.dtype)
    roots = jax.lax.cond(
        (step - 1) % period == 0,
        lambda: tuple(None if h is None else inverse_root(h, eps.astype(h.real.dtype), 2 * k)
                      for h in factors),
        lambda: stat.roots)
    direction = multiply_axes(g, roots)
    if graft is not None:
        # ‖graft‖ / ‖direction‖, 0 where the direction is 0 (a zero gradient); the norms'
        # squares are tested first, so no square root of 0 is differentiated.
        target, norm_sq = jnp.sum(abs_sq(graft)), jnp.sum(abs_sq(direction))
        ratio = jnp.sqrt(jnp.where(target > 0, target, 1.0)) / jnp.sqrt(
            jnp.where(norm_sq > 0, norm_sq, 1.0))
        direction = direction * jnp.where((norm_sq > 0) & (target > 0), ratio, 0.0)
    return direction, ShampooStatistics(factors, roots)


@public
def scale_by_shampoo(b2=1.0, eps=1e-6, *, precondition_frequency=1,
                     max_precond_dim: int = 10000, precondition_1d: bool = False,
                     graft="adagrad", dtype=None):
    """Shampoo's step direction (Gupta, Koren & Singer 2018), with layer-wise grafting
    (Agarwal et al. 2020; Anil et al. 2020).

    Per leaf ``G`` with ``k`` factors (for a matrix, ``L`` and ``R``: ``k = 2``; in general one
    per axis, see ``gradchain/kronecker/factors.py``), at update ``t``:

        L ← β2 L + w G Gᵀ;   R ← β2 R + w Gᵀ G            (w = 1 if β2 = 1, else 1 - β2)
        at t = 1, 1 + f, 1 + 2f, ...:  P_L = (L + εI)^(-1/2k),  P_R = (R + εI)^(-1/2k)
        S = P_L G P_R                         (a tensor: G multiplied by P_i along each axis i)
        out = S · ‖A‖ / ‖S‖                   (grafting; ‖·‖ over the leaf)

    with ``A`` the output of the ``graft`` transformation on the same gradient. ``β2 = 1`` and
    no grafting is the paper's algorithm (``H_0 = εI`` there is ε added before the root here).
    The roots are computed by ``eigh`` (``gradchain/kronecker/roots.py``) and kept between
    recomputations. A leaf with no factor (every axis longer than ``max_precond_dim``, a 1-D
    leaf without ``precondition_1d``, a 0-d leaf) gets ``A`` itself, or ``G`` without grafting.
    ``k`` counts the factors the leaf has, so an axis left out is not counted in the exponent
    (a matrix with one factor gets ``L^(-1/2) G``, full-matrix Adagrad on each column).

    Args:
      b2: β2 in ``[0, 1]``; 1 sums the statistics (the paper), below 1 averages them.
      eps: ε > 0, added to each factor before its root.
      precondition_frequency: f, recompute the roots every f updates (a whole number ``>= 1``,
        stored as a hyperparameter). Once the step count saturates at ``2^31 - 1`` they are
        recomputed at every update or never.
      max_precond_dim: axes longer than this get no factor (an integer ``>= 1``).
      precondition_1d: give 1-D leaves a factor (full-matrix Adagrad on the vector).
      graft: the magnitude's source: ``"adagrad"`` (``g / (√Σg² + 1e-10)``, the usual choice),
        ``"sgd"`` (the gradient), any gradient transformation, or None (no grafting).
      dtype: dtype of the factors and roots (default: the params'), at least float32.
    """
    check_range(NAME, "b2", b2, 0, 1)
    check_range(NAME, "eps", eps, 0, low_open=True)
    check_whole_number(NAME, "precondition_frequency", precondition_frequency, 1)
    max_precond_dim = check_steps(NAME, "max_precond_dim", max_precond_dim, 1, what="rows")
    check_floating_dtype(NAME, "dtype", dtype)
    shown_graft = graft
    if isinstance(graft, str):
        if graft not in GRAFTS:
            raise ValueError(f"{NAME}: graft={graft!r} is not one of 'adagrad', 'sgd', None or "
                             "a gradient transformation")
        graft = scale_by_rss(0.0, 1e-10, eps_in_sqrt=False) if graft == "adagrad" else identity()
    elif graft is not None:
        check_transformations(NAME, {"graft": graft})
    hyperparams = {"b2": b2, "eps": eps, "precondition_frequency": precondition_frequency}

    def statistic(p, _):
        axes = preconditioned_axes(jnp.shape(p), max_precond_dim, precondition_1d)
        matrices = matrix_dtype(p, dtype)
        return ShampooStatistics(zero_factors(p, axes, matrices),
                                 identity_factors(p, axes, matrices))

    grafting = graft is not None

    def rule(g, stat, step, b2, eps, precondition_frequency, graft):
        return _shampoo_leaf(g, stat, step, b2, eps, precondition_frequency,
                             graft if grafting else None)

    return leafwise_transformation(
        NAME, rule, statistic, hyperparams, ScaleByShampooState,
        graft=graft if grafting else identity(),
        display={**hyperparams, "max_precond_dim": max_precond_dim,
                 "precondition_1d": precondition_1d, "graft": shown_graft})
