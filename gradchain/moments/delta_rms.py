"""Adadelta's running average of squared updates."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq
from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, state_names
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


class DeltaRmsState(NamedTuple):
    count: jax.Array
    delta_sq: object
    hyperparams: dict


@public
def scale_by_delta_rms(rho: ScalarOrSchedule = 0.9, eps: ScalarOrSchedule = 1e-6, *, dtype=None,
                       hyperparam_name=None) -> GradientTransformation:
    """Multiply by the RMS of past outputs (Zeiler 2012, Adadelta's numerator).

    ``Δ_t = √(u_{t-1} + ε) · x_t``; ``u_t = ρ · u_{t-1} + (1 - ρ) · Δ_t²``, ``u_0 = 0``; outputs
    ``Δ_t``. Its input is ``x_t = g_t / √(v_t + ε)``, so Adadelta's step is
    ``chain(divide_by_sqrt(identity(), chain(square(), ema(ρ)), eps_root=ε),
    scale_by_delta_rms(ρ, ε))``. ``ε > 0``: with ε = 0, ``Δ_1 = 0`` and ``u`` stays 0, so every
    output would be 0.

    Complex inputs: ``u`` averages ``|Δ|²`` and is real (the params' real dtype), the
    convention of Optax's second moments. (Optax's own ``adadelta`` squares complex updates,
    ``Δ²``, and is not meant for complex params.)

    Args:
      rho: ρ in ``[0, 1]``.
      eps: ε ``> 0``.
      dtype: dtype of ``u`` (default: the params' real dtype).
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``DeltaRmsState``: ``count``, ``delta_sq`` (the average ``u`` of ``Δ²``, params-shaped) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    names = state_names("scale_by_delta_rms", hyperparam_name, ("rho", "eps"))
    check_range("scale_by_delta_rms", names["rho"], rho, 0, 1)
    check_range("scale_by_delta_rms", names["eps"], eps, 0, low_open=True)

    def leaf(x, u, p, rho, weight, eps):
        delta = jnp.sqrt(u + eps) * x
        return delta, rho * u + weight * abs_sq(delta)

    return elementwise_transformation(
        "scale_by_delta_rms", DeltaRmsState, leaf, Hyperparams(names, rho=rho, eps=eps),
        stat_init=lambda p, dt: jnp.zeros(jnp.shape(p), dt), dtype=dtype, real_statistic=True,
        prepare=lambda count, rho, eps: {"rho": rho, "weight": 1 - rho, "eps": eps})
