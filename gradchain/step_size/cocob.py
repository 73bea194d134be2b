"""COCOB-Backprop (Orabona & Tommasi 2017): a per-parameter step found by betting on a coin."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.hyperparams import compute_dtype
from gradchain.core.public import public
from gradchain.core.validation import check_not_schedule, check_range
from gradchain.kit.rules import per_leaf
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "scale_by_cocob"
REAL_ONLY = ("coin betting compares gradients and rewards by sign and order, which complex "
             "numbers do not have")


class CocobStats(NamedTuple):
    """COCOB's statistics of one leaf (Optax's ``COCOBState`` fields)."""
    init_particles: jax.Array
    cumulative_gradients: jax.Array
    scale: jax.Array
    subgradients: jax.Array
    reward: jax.Array


class CocobState(NamedTuple):
    count: jax.Array | None  # None unless alpha is a schedule
    stats: Any  # a CocobStats per leaf
    hyperparams: dict


@public
def scale_by_cocob(alpha: ScalarOrSchedule = 100.0, eps=1e-8) -> GradientTransformation:
    """COCOB-Backprop's step (Orabona & Tommasi 2017, Algorithm 2), per parameter.

    With ``g`` the incoming update and ``θ_0`` the params at ``init``::

        L ← max(L, |g|)            (L_0 = ε)      G ← G + |g|
        R ← max(R - g·(θ - θ_0), 0)              C ← C - g
        θ_new = θ_0 + C / (L · max(G + L, α L)) · (L + R),   out = θ_new - θ

    The output is the whole update (no learning rate after it). Arguments, defaults and numbers
    are Optax's ``scale_by_cocob``. Built with the kit's ``per_leaf`` (five statistics per
    leaf). Needs ``params``; real leaves only.

    Args:
      alpha: α ``> 0``, the fraction of the wealth bet (100 in the paper).
      eps: ε ``> 0``, the starting value of every ``L`` (used once, at ``init``).

    Returns:
      A ``GradientTransformation`` whose state is a ``CocobState`` (``count``, ``stats``: per
      param a ``CocobStats``: the starting point θ_0, ``C``, ``L``, ``G``
      and ``R`` above; ``hyperparams``). Needs ``params``.
    """
    check_range(NAME, "alpha", alpha, 0, low_open=True)
    check_range(NAME, "eps", eps, 0, low_open=True)
    check_not_schedule(NAME, "eps", eps)

    def start(param, dtype):
        def zeros():
            return jnp.zeros(jnp.shape(param), dtype)
        return CocobStats(jnp.array(param, dtype=dtype, copy=True), zeros(),
                          jnp.full(jnp.shape(param), eps, dtype), zeros(), zeros())

    def rule(g, stat, param, alpha):
        dtype = compute_dtype(g.dtype, param.dtype, stat.scale.dtype)
        g, x = g.astype(dtype), param.astype(dtype)
        x0, c, big_l, big_g, r = (s.astype(dtype) for s in stat)
        big_l = jnp.maximum(big_l, jnp.abs(g))
        big_g = big_g + jnp.abs(g)
        r = jnp.maximum(r - g * (x - x0), 0)
        c = c - g
        out = -x + (x0 + c / (big_l * jnp.maximum(big_g + big_l, alpha * big_l)) * (big_l + r))
        return out, CocobStats(stat.init_particles, c, big_l, big_g, r)

    return per_leaf(rule, name=NAME, hyperparams={"alpha": alpha}, statistic=start,
                    output_dtype="params", real_input=REAL_ONLY, state_type=CocobState,
                    display={"alpha": alpha, "eps": eps})
