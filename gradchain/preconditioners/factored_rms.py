"""Adafactor's preconditioner: a second moment kept as row and column statistics."""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.dtypes import abs_sq
from gradchain.core.public import public
from gradchain.core.validation import check_range, check_whole_number
from gradchain.kit.rules import per_leaf
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


class FactoredMoments(NamedTuple):
    """One factored leaf's second moment: its means over the larger axis (``row``) and over the
    other factored axis (``col``)."""
    row: jax.Array
    col: jax.Array


class FactoredRmsState(NamedTuple):
    count: jax.Array
    nu: object
    hyperparams: dict


def decay_rate_pow(count, exponent=0.8):
    """Adafactor's ``β2_t = 1 - (count + 1)^{-exponent}`` (count 0 at the first update), with
    ``count + 1`` in float32, as Optax's."""
    t = jnp.asarray(count + 1, jnp.float32)
    return 1.0 - t ** (-exponent)


def factored_axes(shape, factored: bool, min_dim_size_to_factor: int) -> Optional[tuple]:
    """``(d1, d0)``: the axes of the second largest and the largest dimension, or None when the
    leaf keeps a full second moment (not factored, fewer than two axes, or the second largest
    dimension under ``min_dim_size_to_factor``)."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


@public
def scale_by_factored_rms(factored: bool = True, decay_rate: ScalarOrSchedule = 0.8,
                          step_offset: int = 0, min_dim_size_to_factor: int = 128,
                          epsilon: ScalarOrSchedule = 1e-30, decay_rate_fn=decay_rate_pow, *,
                          hyperparam_name=None) -> GradientTransformation:
    """``u / √V̂_t`` with a factored second moment (Shazeer & Stern 2018, Adafactor).

    With ``G = |u|² + ε`` and ``β_t = decay_rate_fn(count - step_offset, decay_rate)``
    (``1 - t^{-0.8}`` by default): for a leaf whose two largest axes ``d0`` (largest) and
    ``d1`` are both at least ``min_dim_size_to_factor``, ``R_t = β_t R + (1 - β_t) mean_{d0} G``
    and ``C_t = β_t C + (1 - β_t) mean_{d1} G``, and ``V̂ = R C / mean(R)`` (an outer product
    along those axes): the state holds rows + columns, not rows × columns. Other leaves keep
    ``V_t = β_t V + (1 - β_t) G`` in full. Optax's ``scale_by_factored_rms`` (arguments, defaults
    and numbers). ``torch.optim.Adafactor`` factors the last two axes of every leaf of 2 or more
    axes (``min_dim_size_to_factor=1``; the same axes for matrices and for stacks whose last
    two axes are their largest) and clamps ``mean(R)`` and ``V̂`` from below instead of adding
    ``ε`` (the two differ only for gradients of ~1e-15 and less).

    Args:
      factored: factor leaves of 2 or more axes.
      decay_rate: the exponent given to ``decay_rate_fn``; a number, array or schedule. A
        Python number is given in float32 (Optax's numbers), an array in its own dtype.
      step_offset: subtracted from the count (fine-tuning from a later step).
      min_dim_size_to_factor: the smallest second largest dimension that is factored.
      epsilon: ε ``>= 0``, added to ``|u|²``.
      decay_rate_fn: ``(count, decay_rate) -> β_t``.
      hyperparam_name: the keys the state stores ``decay_rate`` and ``epsilon`` under:
        ``{name: state key}`` (``adafactor`` stores ``epsilon`` as ``eps``), or None.

    Returns:
      A ``GradientTransformation``; its state is ``FactoredRmsState(count, nu, hyperparams)``
      (``nu`` per leaf: ``FactoredMoments(row, col)`` or a full array).
    """
    check_range("scale_by_factored_rms", "decay_rate", decay_rate)
    check_range("scale_by_factored_rms", "epsilon", epsilon, 0)
    check_whole_number("scale_by_factored_rms", "step_offset", step_offset, 0)
    check_whole_number("scale_by_factored_rms", "min_dim_size_to_factor",
                       min_dim_size_to_factor, 0)

    def axes(shape):
        return factored_axes(shape, factored, min_dim_size_to_factor)

    def init(param, dtype):
        dims = axes(jnp.shape(param))
        if dims is None:
            return jnp.zeros(jnp.shape(param), dtype)
        d1, d0 = dims
        shape = jnp.shape(param)
        return FactoredMoments(jnp.zeros(shape[:d0] + shape[d0 + 1:], dtype),
                               jnp.zeros(shape[:d1] + shape[d1 + 1:], dtype))

    # Optax computes β2_t in float32 from a Python number (weakly typed), in the array's dtype
    # from an array; the state keeps every hyperparameter as an array, so remember which.
    weak = isinstance(decay_rate, (int, float))

    def scalars(decay_rate, epsilon, step):
        exponent = decay_rate.astype(jnp.float32) if weak else decay_rate
        decay = decay_rate_fn(step - 1 - step_offset, exponent)
        return {"decay": decay, "weight": 1.0 - decay, "epsilon": epsilon}

    def rule(u, stat, decay, weight, epsilon):
        grad_sqr = abs_sq(u) + epsilon
        dims = axes(u.shape)
        if dims is None:
            nu = (decay * stat + weight * grad_sqr).astype(stat.dtype)
            return u * nu ** -0.5, nu
        d1, d0 = dims
        row = (decay * stat.row + weight * jnp.mean(grad_sqr, axis=d0)).astype(stat.row.dtype)
        col = (decay * stat.col + weight * jnp.mean(grad_sqr, axis=d1)).astype(stat.col.dtype)
        row_mean = jnp.mean(row, axis=d1 - 1 if d1 > d0 else d1, keepdims=True)
        out = (u * jnp.expand_dims((row / row_mean) ** -0.5, d0)
               * jnp.expand_dims(col ** -0.5, d1))
        return out, FactoredMoments(row, col)

    return per_leaf(
        rule, name="scale_by_factored_rms",
        hyperparams={"decay_rate": decay_rate, "epsilon": epsilon}, statistic=init,
        scalars=scalars, real_statistic=True, state_type=FactoredRmsState,
        hyperparam_name=hyperparam_name,
        display={"factored": factored, "decay_rate": decay_rate, "step_offset": step_offset,
                 "min_dim_size_to_factor": min_dim_size_to_factor, "epsilon": epsilon})
