"""MADGRAD's step: dual averaging with a cube-root denominator, then momentum by averaging."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import per_leaf
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


class MadgradState(NamedTuple):
    count: jax.Array
    stats: object
    hyperparams: dict


def _initial_stats(param, dtype):
    """One leaf's statistics stacked on a new first axis: ``Σ λ_k g_k²``, ``Σ λ_k g_k`` (0 at
    first) and the starting point ``x_0``."""
    zeros = jnp.zeros(jnp.shape(param), dtype)
    return jnp.stack([zeros, zeros, jnp.asarray(param, dtype)])


@public
def scale_by_madgrad(learning_rate: ScalarOrSchedule, momentum: ScalarOrSchedule = 0.9,
                     eps: ScalarOrSchedule = 1e-6) -> GradientTransformation:
    """MADGRAD's update (Defazio & Jelassi 2022), the step itself (learning rate included).

    With ``λ_t = (γ_t + ε) √t`` (``t`` from 1): ``G_t = G_{t-1} + λ_t g_t²``,
    ``s_t = s_{t-1} + λ_t g_t``, ``z_t = x_0 - s_t / (∛G_t + ε)``, and the new point
    ``x_{t+1} = (1 - c) z_t + c x_t``: the output is ``x_{t+1} - x_t``, computed as
    ``(1 - c)((x_0 - x_t) - s_t / (∛G_t + ε))`` (``c`` the momentum), which does not lose the
    step to the rounding of ``x_t`` as Optax's ``((1 - c) z_t + c x_t) - x_t`` does. ``ε``
    joins ``γ`` as in the authors' PyTorch code; ``√t`` is that of the int32 step count, a
    float32 number, as Optax's. Keeps ``G``, ``s`` and the starting point ``x_0`` per leaf
    (stacked: an array of shape ``(3, *leaf.shape)``). Optax's ``contrib.scale_by_madgrad``
    (arguments, defaults and numbers).

    Args:
      learning_rate: γ ``>= 0``; a number, array or schedule.
      momentum: c in ``[0, 1]``.
      eps: ε ``>= 0``.

    Returns:
      A ``GradientTransformation``; its state is ``MadgradState(count, stats, hyperparams)``.
    """
    check_range("scale_by_madgrad", "learning_rate", learning_rate, 0)
    check_range("scale_by_madgrad", "momentum", momentum, 0, 1)
    check_range("scale_by_madgrad", "eps", eps, 0)

    def scalars(learning_rate, momentum, eps, step):
        lamb = (learning_rate + eps) * jnp.sqrt(step)
        return {"lamb": lamb, "momentum": momentum, "eps": eps}

    def rule(u, stat, param, lamb, momentum, eps):
        grad_sum_sq = stat[0] + (lamb * u ** 2).astype(u.dtype)
        grad_sum = stat[1] + (lamb * u).astype(u.dtype)
        step = (1 - momentum) * ((stat[2] - param) - grad_sum / (jnp.cbrt(grad_sum_sq) + eps))
        return step, jnp.stack([grad_sum_sq, grad_sum, stat[2]])

    return per_leaf(
        rule, name="scale_by_madgrad",
        hyperparams={"learning_rate": learning_rate, "momentum": momentum, "eps": eps},
        statistic=_initial_stats, scalars=scalars, output_dtype="params",
        real_input="its cube root of Σ g² has no complex form", state_type=MadgradState)
