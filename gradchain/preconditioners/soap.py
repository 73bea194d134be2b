"""SOAP's preconditioner: Adam in the eigenbasis of Shampoo's Kronecker factors."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq, real_dtype
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_range, check_steps, check_whole_number
from gradchain.kit.rules import per_leaf
from gradchain.kronecker.eigenbasis import eigenbasis, multiply_axes, refresh_eigenbasis
from gradchain.kronecker.factors import (accumulate_factors, check_leaf_shapes, count_factors,
                                         factor_dtype, identity_factors, preconditioned_axes,
                                         without_variables, zero_factors)
from gradchain.core.hyperparams import ScalarOrSchedule

NAME = "scale_by_soap"


class SoapStatistics(NamedTuple):
    """One leaf's statistics: Adam's moments (``mu`` in the leaf's own basis, ``nu`` in the
    eigenbasis) and, per axis, the factor ``H_i`` and its eigenbasis ``Q_i`` (None where the
    axis gets no factor)."""
    mu: jax.Array
    nu: jax.Array
    factors: tuple
    bases: tuple


class ScaleBySoapState(NamedTuple):
    count: jax.Array
    soap: Any
    hyperparams: dict


def _soap_scalars(step, b1, b2, shampoo_beta, eps, precondition_frequency):
    """What SOAP's rule needs from the hyperparameters, once per update: the moments' weights,
    the step size's bias corrections (for ``s = t - 1`` Adam steps) and this update's kind."""
    adam_steps = step - 1  # the first update only builds the bases
    safe = jnp.maximum(adam_steps, 1)
    period = jnp.round(precondition_frequency).astype(step.dtype)
    return {"b1": b1, "mu_weight": 1 - b1, "b2": b2, "nu_weight": 1 - b2,
            "shampoo_beta": shampoo_beta, "factor_weight": 1 - shampoo_beta, "eps": eps,
            "scale": jnp.sqrt(1 - b2 ** safe) / (1 - b1 ** safe), "first": step == 1,
            "refresh": (adam_steps > 0) & (adam_steps % period == 0)}


def _soap_leaf(g, stat: SoapStatistics, *, b1, mu_weight, b2, nu_weight, shampoo_beta,
               factor_weight, eps, scale, first, refresh):
    dtype = jnp.promote_types(jnp.promote_types(g.dtype, stat.mu.dtype), jnp.float32)
    g = g.astype(dtype)
    bases = stat.bases
    mu = b1 * stat.mu.astype(dtype) + mu_weight * g
    nu = b2 * stat.nu + nu_weight * abs_sq(multiply_axes(g, bases, adjoint=True))
    adam = multiply_axes(mu, bases, adjoint=True) / (jnp.sqrt(nu) + eps)
    out = jnp.where(first, 0, scale * multiply_axes(adam, bases))
    mu = jnp.where(first, stat.mu, mu).astype(stat.mu.dtype)
    nu = jnp.where(first, stat.nu, nu).astype(stat.nu.dtype)
    factors = accumulate_factors(stat.factors, g, shampoo_beta, factor_weight)
    if count_factors(factors):

        def initial(nu):
            return tuple(None if h is None else eigenbasis(h) for h in factors), nu

        def refreshed(nu):
            new = []
            for axis, (h, q) in enumerate(zip(factors, bases)):
                if h is None:
                    new.append(None)
                    continue
                q, order = refresh_eigenbasis(h, q)
                new.append(q)
                nu = jnp.take(nu, order, axis=axis)
            return tuple(new), nu

        branch = jnp.where(first, 0, jnp.where(refresh, 1, 2))
        bases, nu = jax.lax.switch(branch, [initial, refreshed, lambda nu: (bases, nu)], nu)
    return out, SoapStatistics(mu, nu, factors, bases)


@public
def scale_by_soap(b1: ScalarOrSchedule = 0.95, b2: ScalarOrSchedule = 0.95, shampoo_beta=None,
                  eps: ScalarOrSchedule = 1e-8, *, precondition_frequency=10,
                  max_precond_dim: int = 10000, precondition_1d: bool = False,
                  dtype=None) -> GradientTransformation:
    """SOAP's step direction (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using
    Adam"): Adam run in the eigenbasis of Shampoo's preconditioner.

    Per leaf ``G`` (for a matrix, factors ``L`` and ``R``; in general one per axis, see
    ``gradchain/kronecker/factors.py``), at update ``t``::

        G' = Q_Lᵀ G Q_R                                  (into the eigenbasis)
        m ← β1 m + (1 - β1) G;   v ← β2 v + (1 - β2) G'²
        out = √(1 - β2^s)/(1 - β1^s) · Q_L [(Q_Lᵀ m Q_R) / (√v + ε)] Q_Rᵀ,   s = t - 1
        L ← β_s L + (1 - β_s) G Gᵀ;   R ← β_s R + (1 - β_s) Gᵀ G
        every f-th s: per factor, order = argsort(diag(Qᵀ H Q), descending), Q ← qr(H Q[:, order]).Q,
                      v permuted along that axis by order (the paper's Algorithm 4)

    The first update only builds ``L``, ``R`` and their eigenbases (``eigh``, by decreasing
    eigenvalue) from the first gradient and returns zeros, so no gradient is ever projected on
    a basis made from itself (the authors' code). Conventions of the authors' code: ε on the
    raw ``√v``, both bias corrections in the step size, ``m`` accumulated in the leaf's own
    basis (the paper's Algorithm 3; the code's rotated ``m`` is the same in exact arithmetic),
    ``v`` only permuted, never rotated, when a basis changes. An axis longer than
    ``max_precond_dim``, a 1-D leaf without ``precondition_1d`` and a 0-d leaf keep the identity
    basis: there SOAP is Adam. Complex leaves use ``G Gᴴ`` and ``Qᴴ``; ``v`` is real.

    There is no ``axis_name``: under ``shard_map`` or ``pmap`` each device must hold its leaves
    whole. A factor along a split axis pairs rows held on different devices (``G Gᵀ`` is no
    sum of per-device parts) and its ``eigh`` needs the whole matrix.

    Args:
      b1: β1 in ``[0, 1)``, the first moment's decay.
      b2: β2 in ``[0, 1)``, the second moment's decay (and the factors', by default).
      shampoo_beta: β_s in ``[0, 1)``, the factors' decay; None: ``b2`` (the authors' default).
      eps: ε ``>= 0``, added to ``√v``.
      precondition_frequency: f, refresh the bases every f updates (a whole number ``>= 1``,
        stored as a hyperparameter). Once the step count saturates at ``2^31 - 1`` the refresh
        happens at every update or never.
      max_precond_dim: axes longer than this get no factor (an integer ``>= 1``).
      precondition_1d: give 1-D leaves a factor (a full ``n × n`` matrix) too.
      dtype: dtype of ``m`` and ``v`` (default: the params'); the factors and bases are kept in
        the params' dtype promoted to at least float32 (``eigh`` and ``qr`` have no bfloat16).

    Returns:
      A ``GradientTransformation`` whose state is a ``ScaleBySoapState(count, soap, hyperparams)``,
      ``soap`` holding a ``SoapStatistics`` per leaf.
    """
    check_range(NAME, "b1", b1, 0, 1, high_open=True)
    check_range(NAME, "b2", b2, 0, 1, high_open=True)
    if shampoo_beta is not None:
        check_range(NAME, "shampoo_beta", shampoo_beta, 0, 1, high_open=True)
    check_range(NAME, "eps", eps, 0)
    check_whole_number(NAME, "precondition_frequency", precondition_frequency, 1)
    max_precond_dim = check_steps(NAME, "max_precond_dim", max_precond_dim, 1, what="rows")
    hyperparams = {"b1": b1, "b2": b2, "eps": eps,
                   "precondition_frequency": precondition_frequency}
    if shampoo_beta is not None:
        hyperparams["shampoo_beta"] = shampoo_beta

    def statistic(p, stat_dtype):
        axes = preconditioned_axes(jnp.shape(p), max_precond_dim, precondition_1d)
        matrices = factor_dtype(stat_dtype)
        return SoapStatistics(jnp.zeros(jnp.shape(p), stat_dtype),
                              jnp.zeros(jnp.shape(p), real_dtype(stat_dtype)),
                              zero_factors(p, axes, matrices), identity_factors(p, axes, matrices))

    def scalars(step, b1, b2, eps, precondition_frequency, shampoo_beta=None):
        return _soap_scalars(step, b1, b2, b2 if shampoo_beta is None else shampoo_beta, eps,
                             precondition_frequency)

    tx = per_leaf(_soap_leaf, name=NAME, hyperparams=hyperparams, statistic=statistic,
                  scalars=scalars, dtype=dtype, state_type=ScaleBySoapState,
                  display={**hyperparams, "max_precond_dim": max_precond_dim,
                           "precondition_1d": precondition_1d})

    def update(updates, state, params=None, **extra):
        check_leaf_shapes(NAME, updates, state.soap, lambda stat: stat.mu.shape)
        return tx.update(updates, state, params, **extra)

    return GradientTransformation(lambda params: tx.init(without_variables(params)), update,
                                  name=NAME, hyperparams=tx.hyperparams, state_type=ScaleBySoapState)
