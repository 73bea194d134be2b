"""Clipping each block (each leaf: a weight matrix, a bias vector) by its root mean square."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq
from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams
from gradchain.core.validation import check_range


class ClipByBlockRmsState(NamedTuple):
    count: jax.Array
    hyperparams: dict


def _clip_block(g, s, p, threshold):
    x = g.astype(jnp.promote_types(g.dtype, threshold.dtype))
    return x / jnp.maximum(1.0, jnp.sqrt(jnp.mean(abs_sq(x))) / threshold), None


def clip_by_block_rms(threshold):
    """``u -> u / max(1, rms(u) / threshold)`` per leaf, ``rms(u) = √(mean(|u|²))``.

    Each leaf (a layer's kernel, its bias) is scaled down, as a whole, to an RMS of at most
    ``threshold``; leaves already below it pass unchanged. Optax's ``clip_by_block_rms``; the
    RMS of a bfloat16 leaf is computed in float32.

    ``threshold > 0``: a number, array or schedule.
    """
    check_range("clip_by_block_rms", "threshold", threshold, 0, low_open=True)
    return elementwise_transformation("clip_by_block_rms", ClipByBlockRmsState, _clip_block,
                                      Hyperparams(threshold=threshold))
