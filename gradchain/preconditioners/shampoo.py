"""Shampoo's preconditioner: an inverse root of a Kronecker factor along each axis, grafted."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq, real_dtype
from gradchain.core.public import called_name, public
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_range, check_steps, check_whole_number
from gradchain.kit.rules import per_leaf
from gradchain.kronecker.eigenbasis import multiply_axes
from gradchain.kronecker.factors import (accumulate_factors, check_leaf_shapes, count_factors,
                                         factor_dtype, factor_shape, identity_factors,
                                         preconditioned_axes, without_variables, zero_factors)
from gradchain.kronecker.roots import inverse_root
from gradchain.core.hyperparams import ScalarOrSchedule

NAME = "scale_by_shampoo"
GRAFTS = ("adagrad", "sgd", None)


class ShampooStatistics(NamedTuple):
    """One leaf's statistics: per axis, the factor ``H_i`` and its inverse root ``P_i`` as last
    computed (None where the axis gets no factor), and Adagrad's sum of ``|g|²`` for grafting
    (None without it)."""
    factors: tuple
    roots: tuple
    graft_sum: Any


class ScaleByShampooState(NamedTuple):
    count: jax.Array
    shampoo: Any
    hyperparams: dict


def _leaf_shape(stat: ShampooStatistics) -> tuple:
    return factor_shape(stat.factors) if stat.graft_sum is None else stat.graft_sum.shape


def _shampoo_scalars(step, b2, eps, precondition_frequency, graft_eps=0.0):
    """Once per update: the factors' decay and weight, ε's, and whether the roots are
    recomputed (at updates 1, 1 + f, 1 + 2f, ...)."""
    period = jnp.round(precondition_frequency).astype(step.dtype)
    return {"decay": b2, "weight": jnp.where(b2 == 1, 1.0, 1 - b2), "eps": eps,
            "graft_eps": graft_eps, "refresh": (step - 1) % period == 0}


def _shampoo_leaf(g, stat: ShampooStatistics, *, decay, weight, eps, graft_eps, refresh,
                  graft):
    dtype = jnp.promote_types(g.dtype, jnp.float32)
    g = g.astype(dtype)
    graft_sum, magnitude = stat.graft_sum, None
    if graft == "adagrad":
        graft_sum = stat.graft_sum + abs_sq(g).astype(stat.graft_sum.dtype)
        scale = jnp.sqrt(graft_sum) + graft_eps
        magnitude = g / jnp.maximum(scale, jnp.finfo(scale.dtype).tiny)  # 0/0 is 0
    elif graft == "sgd":
        magnitude = g
    k = count_factors(stat.factors)
    if k == 0:
        return (g if magnitude is None else magnitude), stat._replace(graft_sum=graft_sum)
    factors = accumulate_factors(stat.factors, g, decay, weight)
    roots = jax.lax.cond(
        refresh,
        lambda: tuple(None if h is None else inverse_root(h, eps, 2 * k) for h in factors),
        lambda: stat.roots)
    direction = multiply_axes(g, roots)
    if magnitude is not None:
        # ‖magnitude‖ / ‖direction‖, 0 where either is 0 (a zero gradient); the squared norms
        # are tested first, so no square root of 0 is differentiated.
        target, norm_sq = jnp.sum(abs_sq(magnitude)), jnp.sum(abs_sq(direction))
        ratio = jnp.sqrt(jnp.where(target > 0, target, 1.0)) / jnp.sqrt(
            jnp.where(norm_sq > 0, norm_sq, 1.0))
        direction = direction * jnp.where((norm_sq > 0) & (target > 0), ratio, 0.0)
    return direction, ShampooStatistics(factors, roots, graft_sum)


@public
def scale_by_shampoo(b2: ScalarOrSchedule = 1.0, eps: ScalarOrSchedule = 1e-6, *,
                     precondition_frequency=1, max_precond_dim: int = 10000,
                     precondition_1d: bool = False, graft="adagrad",
                     graft_eps: ScalarOrSchedule = 1e-10, dtype=None) -> GradientTransformation:
    """Shampoo's step direction (Gupta, Koren & Singer 2018), with layer-wise grafting
    (Agarwal et al. 2020; Anil et al. 2020).

    Per leaf ``G`` with ``k`` factors (for a matrix, ``L`` and ``R``: ``k = 2``; in general one
    per axis, see ``gradchain/kronecker/factors.py``), at update ``t``:

        L ← β2 L + w G Gᵀ;   R ← β2 R + w Gᵀ G            (w = 1 if β2 = 1, else 1 - β2)
        at t = 1, 1 + f, 1 + 2f, ...:  P_L = (L + εI)^(-1/2k),  P_R = (R + εI)^(-1/2k)
        S = P_L G P_R                         (a tensor: G multiplied by P_i along each axis i)
        out = S · ‖A‖ / ‖S‖                   (grafting; ‖·‖ over the leaf)

    with ``A`` the grafted method's direction: Adagrad's ``G / (√Σ|G|² + ε_graft)`` or the
    gradient itself (SGD). ``β2 = 1`` without grafting is the paper's algorithm (its
    ``H_0 = εI`` is ε added before the root here). The roots are computed by ``eigh``
    (``gradchain/kronecker/roots.py``) and kept between recomputations; their accuracy is
    about ``1e-16 ‖H‖ / ε`` relative, so a tiny ε against large statistics costs digits. A leaf
    with no factor (every axis longer than ``max_precond_dim``, a 1-D leaf without
    ``precondition_1d``, a 0-d leaf) gets ``A`` itself, or ``G`` without grafting. ``k`` counts
    the factors the leaf has, so an axis left out is not counted in the exponent (a matrix with
    one factor gets ``L^(-1/2) G``, full-matrix Adagrad on each column). Complex leaves use
    ``G Gᴴ``. There is no ``axis_name``: under ``shard_map`` or ``pmap`` each device must hold
    its leaves whole (a factor along a split axis is no sum of per-device parts, and its
    ``eigh`` needs the whole matrix; the grafting norms are per leaf too).

    Args:
      b2: β2 in ``[0, 1]``; 1 sums the statistics (the paper), below 1 averages them.
      eps: ε > 0, added to each factor before its root.
      precondition_frequency: f, recompute the roots every f updates (a whole number ``>= 1``,
        stored as a hyperparameter). Once the step count saturates at ``2^31 - 1`` they are
        recomputed at every update or never.
      max_precond_dim: axes longer than this get no factor (an integer ``>= 1``).
      precondition_1d: give 1-D leaves a factor (full-matrix Adagrad on the vector).
      graft: where the step's size per leaf comes from: ``"adagrad"`` (the usual choice),
        ``"sgd"`` or None (no grafting: Shampoo's own size).
      graft_eps: ε_graft ``>= 0`` of the Adagrad graft (Anil et al.'s diagonal epsilon).
      dtype: dtype of the factors, roots and graft sums (default: the params'); factors and
        roots in at least float32.

    Returns:
      A ``GradientTransformation`` whose state is a ``ScaleByShampooState(count, shampoo, hyperparams)``,
      ``shampoo`` holding a ``ShampooStatistics`` per leaf.
    """
    check_range(NAME, "b2", b2, 0, 1)
    check_range(NAME, "eps", eps, 0, low_open=True)
    check_whole_number(NAME, "precondition_frequency", precondition_frequency, 1)
    max_precond_dim = check_steps(NAME, "max_precond_dim", max_precond_dim, 1, what="rows")
    if graft not in GRAFTS:
        raise ValueError(f"{called_name(NAME)}: graft={graft!r} is not one of 'adagrad', 'sgd' "
                         "or None")
    hyperparams = {"b2": b2, "eps": eps, "precondition_frequency": precondition_frequency}
    if graft == "adagrad":
        check_range(NAME, "graft_eps", graft_eps, 0)
        hyperparams["graft_eps"] = graft_eps

    def statistic(p, stat_dtype):
        axes = preconditioned_axes(jnp.shape(p), max_precond_dim, precondition_1d)
        matrices = factor_dtype(stat_dtype)
        graft_sum = (jnp.zeros(jnp.shape(p), real_dtype(stat_dtype)) if graft == "adagrad"
                     else None)
        return ShampooStatistics(zero_factors(p, axes, matrices),
                                 identity_factors(p, axes, matrices), graft_sum)

    tx = per_leaf(functools.partial(_shampoo_leaf, graft=graft), name=NAME,
                  hyperparams=hyperparams, statistic=statistic, scalars=_shampoo_scalars,
                  dtype=dtype, state_type=ScaleByShampooState,
                  display={**hyperparams, "max_precond_dim": max_precond_dim,
                           "precondition_1d": precondition_1d, "graft": graft})

    def update(updates, state, params=None, **extra):
        check_leaf_shapes(NAME, updates, state.shampoo, _leaf_shape)
        return tx.update(updates, state, params, **extra)

    return GradientTransformation(lambda params: tx.init(without_variables(params)), update,
                                  name=NAME, hyperparams=tx.hyperparams, state_type=ScaleByShampooState)
