"""Adaptive gradient clipping (Brock et al. 2021): clip each unit relative to its weights."""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq
from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, state_names
from gradchain.core.reductions import (check_axis_name, shown_with_axis_name,
                                        sum_over_devices)
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

DIVISION_FLOOR = 1e-6
"""Floor of ``‖G_i‖`` in the clipping factor, against division by zero (Optax's ``div_eps``)."""


class AdaptiveGradClipState(NamedTuple):
    count: jax.Array
    hyperparams: dict


def unitwise_norm(x, axis: Optional[Union[int, tuple]] = None, *,
                  axis_name=None) -> jax.Array:
    """The L2 norm of each unit of ``x`` (of ``|x|`` for complex ``x``), broadcast to
    ``x.shape``.

    A unit is what a single output unit owns. With ``axis=None`` the reduction follows the
    rank, for JAX's (input, …, output) layouts, as in Brock et al.'s code and Optax: a scalar or
    vector (also after squeezing unit dimensions) is one unit; rank 2 (``in, out``) and 3
    (multi-head ``in, heads, out``) reduce axis 0; rank 4 (conv ``HWIO``) axes 0-2; rank 5
    (conv 3-D ``DHWIO``) axes 0-3. Other ranks need ``axis``.

    ``axis_name``: the mesh or ``pmap`` axis ``x`` is split over, along axes a unit spans (the
    rows of an ``(in, out)`` kernel); the units' sums of squares are ``psum``-ed over it. The
    default units then follow the rank of this device's part: give ``axis`` where a split
    dimension shrinks to size 1.

    Args:
      x: an array (a gradient or weight leaf).
      axis: the axes a unit's norm spans, or None for the default by rank.
      axis_name: the mesh or ``pmap`` axis ``x`` is split over, or None.

    Returns:
      An array of ``x``'s shape (real), each element the norm of its unit.
    """
    check_axis_name("unitwise_norm", axis_name)
    x = jnp.asarray(x)
    if axis is not None:
        reduce = axis
    elif jnp.squeeze(x).ndim <= 1:
        reduce = None
    elif x.ndim in (2, 3):
        reduce = 0
    elif x.ndim in (4, 5):
        reduce = tuple(range(x.ndim - 1))
    else:
        raise ValueError(f"unitwise_norm: no default unit for an array of shape {x.shape}; "
                         "give axis (the axes a unit spans)")
    squares = sum_over_devices([jnp.sum(abs_sq(x), axis=reduce, keepdims=True)], axis_name)
    return jnp.broadcast_to(jnp.sqrt(squares), x.shape)


@public
def adaptive_grad_clip(clipping, eps: ScalarOrSchedule = 1e-3,
                       axis: Optional[Union[int, tuple]] = None, *, axis_name=None,
                       hyperparam_name=None) -> GradientTransformation:
    """Adaptive gradient clipping, unit by unit (Brock et al. 2021, NFNets).

    With ``G_i``, ``W_i`` the gradient and weights of unit ``i`` (``unitwise_norm``) and
    ``M_i = clipping · max(‖W_i‖, eps)``: ``G_i -> G_i`` if ``‖G_i‖ < M_i``, else
    ``G_i · M_i / max(‖G_i‖, 1e-6)``. ``eps`` keeps zero-initialised weights (biases) from
    freezing. Optax's ``adaptive_grad_clip`` (same arguments and numbers). Needs ``params``.

    Args:
      clipping: ``λ > 0``, the largest allowed ratio ``‖G_i‖ / ‖W_i‖`` (the paper uses 0.01 to
        0.16, smaller for larger batches).
      eps: ``>= 0``, the floor of the weight norm.
      axis: the axes a unit's norm spans (default: by rank, see ``unitwise_norm``).
      axis_name: under ``shard_map``/``pmap`` with the leaves split over this axis along the
        axes a unit spans, the norms of whole units (``unitwise_norm``); None (default): leaves
        not split.
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` (its ``update`` needs params) whose state is
      ``AdaptiveGradClipState(count, hyperparams)`` (``clipping``, ``eps``).
    """
    names = state_names("adaptive_grad_clip", hyperparam_name, ("clipping", "eps"))
    check_range("adaptive_grad_clip", names["clipping"], clipping, 0, low_open=True,
                allow_inf=True)
    check_range("adaptive_grad_clip", names["eps"], eps, 0)
    check_axis_name("adaptive_grad_clip", axis_name)

    def leaf(g, s, p, clipping, eps):
        g = g.astype(jnp.promote_types(g.dtype, clipping.dtype))
        p = p.astype(jnp.promote_types(p.dtype, clipping.dtype))
        g_norm = unitwise_norm(g, axis, axis_name=axis_name)
        max_norm = clipping * jnp.maximum(unitwise_norm(p, axis, axis_name=axis_name), eps)
        clipped = g * (max_norm / jnp.maximum(g_norm, DIVISION_FLOOR))
        return jnp.where(g_norm < max_norm, g, clipped), None

    hyper = Hyperparams(names, clipping=clipping, eps=eps)
    shown = dict(hyper.specs)
    if axis is not None:
        shown["axis"] = axis
    return elementwise_transformation(
        "adaptive_grad_clip", AdaptiveGradClipState, leaf,
        hyper, needs_params=True,
        display=shown_with_axis_name(shown, axis_name))
