"""The learning rate in force, for logging: schedule x run-time scale x multipliers x plateau.

A step's size is spread over several places of the state: the value of ``learning_rate`` (a
schedule's value at the latest update), the run-time multiplier of a scheduled rate
(``learning_rate_scale``, see ``scale_by_learning_rate``), a ``multiplier`` stage (AdamW's
schedule multiplier ``η_t`` in the paper's form) and the ``scale`` of ``reduce_on_plateau``.
``effective_learning_rate`` multiplies them, so the number logged is the one the latest update
used.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.hyperparams import scale_name
from gradchain.core.paths import format_path
from gradchain.introspection.find import plain_state, state_fields
from gradchain.introspection.hyperparams import _entries, _resolve, all_equal
from gradchain.schedules.plateau import ReduceOnPlateauState

MULTIPLIER = "multiplier"


def effective_learning_rate(state, address: str = "learning_rate") -> jax.Array:
    """``γ · s · Π η · Π scale``: the learning rate the latest update used (at ``init``: the
    one the first will use, before any plateau decision).

    - ``γ``: the hyperparameter at ``address`` (a name, or a name under a path prefix, as in
      ``get_hyperparam``);
    - ``s``: its run-time multiplier ``<name>_scale`` when it is scheduled (1 otherwise);
    - ``η``: every ``multiplier`` hyperparameter (times its ``multiplier_scale`` when it is
      scheduled), and ``scale``: the ``scale`` of every
      ``reduce_on_plateau``, that act on the same updates: those in the chain holding the rate
      or in a chain around it, not those of another parameter group.

    ``state`` may be ``nnx.Optimizer``'s ``opt_state``. Works inside ``jit``.

    Raises:
      KeyError: nothing matches ``address`` (the message lists the paths there are).
      ValueError: it matches several rates whose effective values differ (parameter groups
        with different rates or plateaus): give a path prefix that selects one.

    Args:
      state: an optimizer state (``nnx.Optimizer``'s ``opt_state`` too).
      address: the learning rate's name, or a name under a path prefix.

    Returns:
      The rate, a scalar array.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> from gradchain import schedules
      >>> tx = gc.adam(schedules.linear_schedule(0.0, 1e-3, transition_steps=10))
      >>> params = {"w": jnp.zeros(2)}
      >>> state = tx.init(params)
      >>> state = gc.set_hyperparams(tx, state, learning_rate_scale=0.5)
      >>> for _ in range(5):
      ...     _, state = tx.update({"w": jnp.ones(2)}, state, params)
      >>> float(gc.effective_learning_rate(state))  # the schedule's 4e-4 at step 4, halved
      0.0002
    """
    state = plain_state(state)
    entries = _entries(state)
    matches = _resolve("effective_learning_rate", entries, address)

    def scaled(path):
        """The value at ``path`` times its run-time scale, if it is scheduled."""
        scale = path[:-1] + (scale_name(path[-1]),)
        return entries[path] * entries[scale] if scale in entries else entries[path]

    factors = [(path[:-1], scaled(path)) for path in entries if path[-1] == MULTIPLIER]
    factors += [(tuple(map(str, location[:-1])), value)
                for location, value, owner in state_fields(state)
                if location[-1] == "scale" and isinstance(owner, ReduceOnPlateauState)]
    rates = {}
    for path in matches:
        rate = scaled(path)
        for where, factor in factors:
            if where[:-1] == path[:len(where) - 1] and where != path[:-1]:
                rate = rate * factor
        rates[format_path(path)] = rate
    values = list(rates.values())
    if not all_equal(values):
        listed = ", ".join(f"{p}: {np.asarray(v).tolist()!r}" for p, v in rates.items())
        raise ValueError(f"effective_learning_rate: {address!r} matches rates with different "
                         f"effective values ({listed}); give a path prefix that selects one")
    return jnp.asarray(values[0])
