"""Step sizes relative to the size of each parameter block (Adafactor's relative step)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import per_leaf
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


class ParamBlockRmsState(NamedTuple):
    count: jax.Array
    hyperparams: dict


def _safe_rms(x, min_scale):
    """``max(rms(x), min_scale)``, with the gradient 0 (not NaN) where the floor holds."""
    rms = jnp.sqrt(jnp.mean(abs_sq(x)))
    floored = rms <= min_scale
    x = jnp.where(floored, jnp.ones_like(x), x)
    return jnp.where(floored, min_scale, jnp.sqrt(jnp.mean(abs_sq(x))))


@public
def scale_by_param_block_rms(min_scale: ScalarOrSchedule = 1e-3) -> GradientTransformation:
    """``u -> u · max(rms(θ), min_scale)`` per leaf, ``rms(θ) = √(mean |θ|²)`` of its param.

    Adafactor's relative step size (Shazeer & Stern 2018): a step proportional to the scale of
    the weights it changes. Optax's ``scale_by_param_block_rms``; ``min_scale`` is torch
    ``Adafactor``'s ``eps[1]``. Needs params.

    Args:
      min_scale: ``>= 0``, the smallest scale used; a number, array or schedule.

    Returns:
      A ``GradientTransformation``; its state is ``ParamBlockRmsState(count, hyperparams)``.
    """
    check_range("scale_by_param_block_rms", "min_scale", min_scale, 0)
    return per_leaf(lambda u, param, min_scale: u * _safe_rms(param, min_scale),
                    name="scale_by_param_block_rms", hyperparams={"min_scale": min_scale},
                    state_type=ParamBlockRmsState)
