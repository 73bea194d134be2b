"""Layer-wise trust ratios: LARS and LAMB rescale each leaf by ‖θ‖ / ‖u‖."""

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
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "scale_by_trust_ratio"


class TrustRatioState(NamedTuple):
    count: jax.Array
    hyperparams: dict


def _norm(x, floor, axis_name):
    """``max(‖x‖, floor)`` (``‖x‖² = Σ|x|²`` for complex ``x``), with a finite gradient at
    ``x = 0``; ``x`` split over ``axis_name`` when it is given."""
    squared = sum_over_devices([jnp.sum(abs_sq(x))], axis_name)
    positive = squared > 0
    norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1)), 0)
    return jnp.maximum(norm, floor)


@public
def scale_by_trust_ratio(min_norm: ScalarOrSchedule = 0.0,
                         trust_coefficient: ScalarOrSchedule = 1.0, eps: ScalarOrSchedule = 0.0, *,
                         axis_name=None, hyperparam_name=None) -> GradientTransformation:
    """``u -> η · ‖θ‖ / (‖u‖ + ε) · u`` per leaf (a layer's weight or bias), 1 when a norm is 0.

    The layer-wise step of LARS (You et al. 2017, trust coefficient η = 1e-3 there) and LAMB
    (You et al. 2020, ``φ(‖θ‖) = ‖θ‖``, η = 1): each leaf moves by a fixed fraction of its own
    norm, whatever the scale of its gradient. Norms are floored at ``min_norm``. Arguments and
    defaults are Optax's ``scale_by_trust_ratio``.

    LARS' paper applies it to the raw gradient with the decay outside the norm,
    ``η‖θ‖ / (‖g‖ + λ‖θ‖)``; placed after ``add_decayed_weights(λ)`` (as ``lars`` does, with
    Optax) the norm is of ``g + λθ``. Exempt biases and normalisation scales with a mask
    (``lars``, ``lamb``). Needs ``params``.

    Args:
      min_norm: floor of both norms, ``>= 0``.
      trust_coefficient: η ``>= 0``.
      eps: added to the update's norm, ``>= 0``.
      axis_name: under ``shard_map``/``pmap`` with each leaf split over this axis, the norms of
        whole leaves (sums of squares ``psum``-ed over it); None (default): leaves not split.
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``TrustRatioState``: ``count`` and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    names = state_names(NAME, hyperparam_name, ("min_norm", "trust_coefficient", "eps"))
    check_range(NAME, names["min_norm"], min_norm, 0)
    check_range(NAME, names["trust_coefficient"], trust_coefficient, 0)
    check_range(NAME, names["eps"], eps, 0)
    check_axis_name(NAME, axis_name)

    def scale_leaf(u, s, p, trust_coefficient, eps, min_norm):
        param_norm, update_norm = _norm(p, min_norm, axis_name), _norm(u, min_norm, axis_name)
        ratio = trust_coefficient * param_norm / (update_norm + eps)
        ratio = jnp.where((param_norm == 0) | (update_norm == 0), 1, ratio)
        return u * ratio, None

    hyper = Hyperparams(names, min_norm=min_norm, trust_coefficient=trust_coefficient, eps=eps)
    return elementwise_transformation(
        NAME, TrustRatioState, scale_leaf, hyper, needs_params=True,
        display=shown_with_axis_name(hyper.specs, axis_name))
