"""Running a wrapped transformation's update on some calls only, inside ``jit``.

``update_if(pred, step, state)`` is ``step()`` when ``pred`` holds, else zero updates and
``state`` unchanged. It is a ``lax.cond``, so only the taken branch runs (under ``vmap`` both run
and are selected, as with any ``lax.cond``), and no Python branching depends on a value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def zero_output(step):
    """Zeros with the shapes and dtypes of the updates ``step()`` would return (not run); under
    ``shard_map`` they vary over the mesh axes those updates vary over, as a ``lax.cond``
    between the two needs."""
    return jax.tree.map(jnp.zeros_like, jax.eval_shape(step)[0])


def cast_like(new, old):
    """``new`` with the dtypes of ``old`` (the two branches of a ``lax.cond`` must agree, and an
    Optax inner transformation may return a state leaf in another dtype than its ``init``)."""
    return jax.tree.map(lambda n, o: jnp.asarray(n).astype(jnp.result_type(o)), new, old)


def update_if(pred, step, state):
    """``step() -> (updates, new_state)`` if ``pred``, else ``(zeros, state)``; the new state
    keeps the dtypes of ``state``."""

    def run():
        updates, new_state = step()
        return updates, cast_like(new_state, state)

    return jax.lax.cond(pred, run, lambda: (zero_output(step), state))
