"""Clipping each block (each leaf: a weight matrix, a bias vector) by its root mean square."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq
from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, state_names
from gradchain.core.reductions import (check_axis_name, shown_with_axis_name,
                                        sum_over_devices)
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.core.transformation import GradientTransformation


class ClipByBlockRmsState(NamedTuple):
    count: jax.Array
    hyperparams: dict


@public
def clip_by_block_rms(threshold, *, axis_name=None, hyperparam_name=None) -> GradientTransformation:
    """``u -> u / max(1, rms(u) / threshold)`` per leaf, ``rms(u) = √(mean(|u|²))``.

    Each leaf (a layer's kernel, its bias) is scaled down, as a whole, to an RMS of at most
    ``threshold``; leaves already below it pass unchanged. Optax's ``clip_by_block_rms``; the
    RMS of a bfloat16 leaf is computed in float32.

    Args:
      threshold: ``> 0``, a number, array or schedule.
      axis_name: under ``shard_map``/``pmap`` with each leaf split over this axis, the RMS of
        the whole leaf (``Σ |u|²`` and the element count ``psum``-ed over it); None (default):
        leaves not split.
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``ClipByBlockRmsState(count, hyperparams)``
      (``threshold``).
    """
    names = state_names("clip_by_block_rms", hyperparam_name, ("threshold",))
    check_range("clip_by_block_rms", names["threshold"], threshold, 0, low_open=True,
                allow_inf=True)
    check_axis_name("clip_by_block_rms", axis_name)

    def clip_block(g, s, p, threshold):
        x = g.astype(jnp.promote_types(g.dtype, threshold.dtype))
        mean_square = (sum_over_devices([jnp.sum(abs_sq(x))], axis_name)
                       / sum_over_devices([x.size], axis_name))
        return x / jnp.maximum(1.0, jnp.sqrt(mean_square) / threshold), None

    hyper = Hyperparams(names, threshold=threshold)
    return elementwise_transformation(
        "clip_by_block_rms", ClipByBlockRmsState, clip_block, hyper,
        display=shown_with_axis_name(hyper.specs, axis_name))
