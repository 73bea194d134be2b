"""What every schedule shares: argument checks, a display name, the step as a float.

A schedule is a pure function ``step -> value`` that works on a traced step inside ``jit`` (no
Python branching on the step). Step 0 is the first update; the value a schedule gives at step
``t`` is the one in force for update ``t`` (PyTorch's learning rate before its ``t``-th
``optimizer.step()``, counted from 0).

Values (``init_value``, ``gamma``, ``eta_min``...) go through ``check_range`` like every other
hyperparameter, so a traced value passes unchecked. Step counts (``step_size``, ``T_max``,
``milestones``...) shape the schedule itself and must be Python integers.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from gradchain.core.public import called_name


def check_steps(owner: str, name: str, value, low: int = 1) -> int:
    """``value`` as an ``int`` >= ``low``; ``ValueError`` naming owner, argument and range."""
    owner = called_name(owner)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{owner}: {name}={value!r} is not an integer; expected a whole "
                         f"number of steps in [{low}, inf)")
    if value < low:
        raise ValueError(f"{owner}: {name}={value!r} is out of range; expected {name} in "
                         f"[{low}, inf)")
    return int(value)


def check_choice(owner: str, name: str, value, choices) -> str:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    if value not in choices:
        owner = called_name(owner)
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{owner}: {name}={value!r} is not one of {allowed}")
    return value


def named(name: str):
    """Give a schedule function the name of its constructor (shown in an optimizer's repr)."""

    def rename(schedule):
        schedule.__name__ = schedule.__qualname__ = name
        return schedule

    return rename


def float_step(step) -> jax.Array:
    """The step as a float array (JAX's default float: float64 under ``jax_enable_x64``)."""
    return jnp.asarray(step, dtype=jnp.result_type(float))
