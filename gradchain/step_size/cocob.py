"""COCOB-Backprop (Orabona & Tommasi 2017): a per-parameter step found by betting on a coin."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.hyperparams import (Hyperparams, ScalarsByDtype, cast, compute_dtype,
                                        next_count, zero_count)
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation
from gradchain.core.updates import matching_params
from gradchain.core.validation import (check_floating, check_not_schedule, check_range,
                                       check_real, check_same_shapes, check_same_structure)

NAME = "scale_by_cocob"
REAL_ONLY = ("coin betting compares gradients and rewards by sign and order, which complex "
             "numbers do not have")


class CocobState(NamedTuple):
    count: jax.Array | None  # None unless alpha is a schedule
    init_particles: Any
    cumulative_gradients: Any
    scale: Any
    subgradients: Any
    reward: Any
    hyperparams: dict


@public
def scale_by_cocob(alpha=100.0, eps=1e-8):
    """COCOB-Backprop's step (Orabona & Tommasi 2017, Algorithm 2), per parameter.

    With ``g`` the incoming update and ``θ_0`` the params at ``init``::

        L ← max(L, |g|)            (L_0 = ε)      G ← G + |g|
        R ← max(R - g·(θ - θ_0), 0)              C ← C - g
        θ_new = θ_0 + C / (L · max(G + L, α L)) · (L + R),   out = θ_new - θ

    The output is the whole update (no learning rate after it). Arguments and defaults are
    Optax's ``scale_by_cocob``. Needs ``params``; real leaves only.

    Args:
      alpha: α ``> 0``, the fraction of the wealth bet (100 in the paper).
      eps: ε ``> 0``, the starting value of every ``L`` (used once, at ``init``).
    """
    check_range(NAME, "alpha", alpha, 0, low_open=True)
    check_range(NAME, "eps", eps, 0, low_open=True)
    check_not_schedule(NAME, "eps", eps)
    hyper = Hyperparams(alpha=alpha)
    counting = hyper.scheduled()

    def init(params):
        check_floating(NAME, params)
        check_real(NAME, params, "params", REAL_ONLY)
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731 (three buffers)
        return CocobState(zero_count() if counting else None,
                          jax.tree.map(lambda p: jnp.array(p, copy=True), params), zeros(),
                          jax.tree.map(lambda p: jnp.full_like(p, eps), params), zeros(),
                          zeros(), hyper.init())

    def update(updates, state, params=None, **extra):
        del extra
        if params is None:
            raise ValueError(f"{NAME}: update needs params (call update(updates, state, "
                             "params))")
        check_floating(NAME, updates, "updates")
        check_real(NAME, updates, "updates", REAL_ONLY)
        check_same_structure(NAME, updates, state.init_particles)
        check_same_shapes(NAME, updates, state.init_particles)
        leaves, treedef = jax.tree.flatten(updates)
        ps = matching_params(NAME, updates, params)
        values, stored = hyper.read(state.hyperparams, state.count)
        scalars = ScalarsByDtype(values)

        def leaf(g, p, p0, c, big_l, big_g, r):
            dtype = compute_dtype(g.dtype, p.dtype, p0.dtype)
            alpha = scalars(dtype)["alpha"]
            g, x, x0 = (y.astype(dtype) for y in (g, p, p0))
            big_l = jnp.maximum(big_l.astype(dtype), jnp.abs(g))
            big_g = big_g.astype(dtype) + jnp.abs(g)
            r = jnp.maximum(r.astype(dtype) - g * (x - x0), 0)
            c = c.astype(dtype) - g
            out = -x + (x0 + c / (big_l * jnp.maximum(big_g + big_l, alpha * big_l))
                        * (big_l + r))
            return cast(out, p.dtype), c, big_l, big_g, r

        fields = (state.init_particles, state.cumulative_gradients, state.scale,
                  state.subgradients, state.reward)
        results = [leaf(g, p, *stats) for g, p, *stats in
                   zip(leaves, ps, *(treedef.flatten_up_to(f) for f in fields))]
        out, *new = ([r[i] for r in results] for i in range(5))
        new = [treedef.unflatten([cast(x, old.dtype) for x, old in
                                  zip(column, treedef.flatten_up_to(field))])
               for column, field in zip(new, fields[1:])]
        count = next_count(state.count) if counting else None
        return treedef.unflatten(out), CocobState(count, state.init_particles, *new, stored)

    return GradientTransformation(init, update, name=NAME, hyperparams={"alpha": alpha,
                                                                         "eps": eps},
                                  state_type=CocobState)
