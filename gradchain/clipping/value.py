"""Clipping by value."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, state_names
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.core.transformation import GradientTransformation


class ClipState(NamedTuple):
    count: jax.Array
    hyperparams: dict


@public
def clip(max_delta, *, hyperparam_name=None) -> GradientTransformation:
    """``u -> min(max(u, -max_delta), max_delta)`` elementwise. Optax's ``clip``.

    ``max_delta >= 0``: a number, array or schedule. Real updates only: complex numbers have no
    order (as in Optax); clip complex updates by their norm.

    Args:
      max_delta: the bound ``>= 0``; a number, array or schedule.
      hyperparam_name: the key of ``max_delta`` in the state's ``hyperparams``
        (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``ClipState(count, hyperparams)``
      (``max_delta``; ``count`` drives a schedule).
    """
    names = state_names("clip", hyperparam_name, ("max_delta",))
    check_range("clip", names["max_delta"], max_delta, 0, allow_inf=True)
    return elementwise_transformation(
        "clip", ClipState,
        lambda g, s, p, max_delta: (jnp.clip(g, -max_delta, max_delta), None),
        Hyperparams(names, max_delta=max_delta),
        real_input="clipping by value compares values, and complex numbers have no order; "
                   "clip complex updates by their norm (clip_by_global_norm, "
                   "clip_by_block_rms, adaptive_grad_clip)")
