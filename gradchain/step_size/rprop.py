"""Rprop's step sizes: one per parameter, grown while the gradient keeps its sign."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_not_schedule, check_range
from gradchain.kit.rules import per_leaf
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "scale_by_rprop"


class RpropSteps(NamedTuple):
    """One leaf's Rprop statistics."""
    step_size: jax.Array
    prev_update: jax.Array


class RpropState(NamedTuple):
    count: jax.Array
    steps: object
    hyperparams: dict


@public
def scale_by_rprop(learning_rate, eta_minus: ScalarOrSchedule = 0.5,
                   eta_plus: ScalarOrSchedule = 1.2, min_step_size: ScalarOrSchedule = 1e-6,
                   max_step_size: ScalarOrSchedule = 50.0, *,
                   stale_update: bool = False) -> GradientTransformation:
    """Rprop's step (Riedmiller & Braun 1993; the iRprop⁻ variant of Igel & Hüsken 2003, as
    ``torch.optim.Rprop``), per entry, with ``p_{t-1}`` the previous output::

        s_t = g_t · p_{t-1}
        Δ_t = clip(Δ_{t-1} · (η⁺ if s_t > 0 else η⁻), Δ_min, Δ_max)   (Δ_{t-1} if s_t = 0)
        p_t = 0 if s_t < 0 else Δ_t · sign(g_t)                        (Δ_0 = γ, p_0 = 0)

    and outputs ``p_t`` (a step to subtract: ``rprop`` follows it with ``scale(-1)``). After a
    sign change the step is skipped and the next one starts from the shrunk ``Δ``.

    ``stale_update=True`` gives Optax 0.2.8's ``scale_by_rprop``, which outputs the step chosen
    at the previous update instead, ``0 if s_t < 0 else p_{t-1}``: its first update is zero and
    each later one lags by a step (optax pull request #1725). The state is the same.

    Args:
      learning_rate: γ ``>= 0``, the initial step size ``Δ_0`` (used once, by ``init``; not a
        schedule).
      eta_minus: η⁻ in ``(0, 1]``, the factor that shrinks the step after a sign change.
      eta_plus: η⁺ ``>= 1``, the factor that grows it while the sign holds.
      min_step_size: Δ_min ``>= 0``.
      max_step_size: Δ_max ``>= 0``.
      stale_update: Optax 0.2.8's lagging output (above).

    Returns:
      A ``GradientTransformation`` whose state is an ``RpropState`` (``count``, ``steps``: one
      ``RpropSteps(step_size, prev_update)`` per leaf, ``hyperparams`` with η⁻, η⁺, Δ_min and
      Δ_max); it outputs ``p_t``.
    """
    check_not_schedule(NAME, "learning_rate", learning_rate)
    check_range(NAME, "learning_rate", learning_rate, 0, record=False)
    check_range(NAME, "eta_minus", eta_minus, 0, 1, low_open=True)
    check_range(NAME, "eta_plus", eta_plus, 1)
    check_range(NAME, "min_step_size", min_step_size, 0)
    check_range(NAME, "max_step_size", max_step_size, 0)

    def init(param, dtype):
        return RpropSteps(jnp.full(jnp.shape(param), learning_rate, dtype),
                          jnp.zeros(jnp.shape(param), dtype))

    def rule(u, stat, eta_minus, eta_plus, min_step_size, max_step_size):
        agreement = u * stat.prev_update
        factor = jnp.where(agreement > 0, eta_plus, eta_minus)
        grown = jnp.clip(stat.step_size * factor, min_step_size, max_step_size)
        step_size = jnp.where(agreement == 0, stat.step_size, grown)
        skipped = agreement < 0
        update = jnp.where(skipped, jnp.zeros_like(u), step_size * jnp.sign(u))
        out = jnp.where(skipped, jnp.zeros_like(u), stat.prev_update) if stale_update else update
        return out, RpropSteps(step_size, update)

    return per_leaf(
        rule, name=NAME, statistic=init, state_type=RpropState,
        hyperparams={"eta_minus": eta_minus, "eta_plus": eta_plus,
                     "min_step_size": min_step_size, "max_step_size": max_step_size},
        real_input="Rprop compares signs of real numbers")
