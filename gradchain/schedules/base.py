"""What every schedule shares: argument checks, a display name, and step arithmetic that stays
exact for any step the optimizer can count.

A schedule is a pure function ``step -> value`` that works on a traced step inside ``jit`` (no
Python branching on the step). Step 0 is the first update; the value a schedule gives at step
``t`` is the one in force for update ``t`` (PyTorch's learning rate before its ``t``-th
``optimizer.step()``, counted from 0).

Arguments are checked when the schedule is built, and an error starts with the schedule's name,
then names the argument, its value and what is allowed. Values (``init_value``, ``gamma``,
``eta_min``...) go through ``check_value``, so a traced value passes unchecked. Step counts
(``step_size``, ``T_max``, ``milestones``...) shape the schedule itself and must be integers
known at construction (``core.validation.check_steps``); any size is allowed, beyond 2^31 too.

Steps and step counts. The optimizer's step count is an int32 that saturates at ``2^31 - 1``.
Where a schedule compares, divides or subtracts steps (milestones, restarts, cycles, joins) it
does so in the step's integer dtype, so it is exact at every count up to the saturated one (a
float32 step is not: it rounds past ``2^24``). A step count larger than the step's dtype holds
is never reached by such a step and is treated as such, without converting it (which overflows
in 32-bit mode). Where a formula is continuous in ``t`` (cosine, polynomial, one-cycle) the
step and the step counts enter as floats, as in Optax. A step given as a Python or NumPy integer
too large for JAX's integer dtype (``2^31`` or more without ``jax_enable_x64``) becomes a float,
as Optax casts it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.public import called_name
from gradchain.core.validation import check_range


def check_value(owner: str, name: str, value, low=None, high=None, *,
                low_open: bool = False, high_open: bool = False) -> None:
    """A schedule's value argument: a number or an array (not itself a schedule), in range
    (``check_range``'s rules; a traced value passes)."""
    owner = called_name(owner)
    if callable(value):
        raise TypeError(f"{owner}: {name}={value!r} must be a number or an array, not a "
                        "schedule")
    check_range(owner, name, value, low, high, low_open=low_open, high_open=high_open)


def check_schedule(owner: str, name: str, value) -> None:
    """Refuse an argument that should be a schedule (a function ``step -> value``)."""
    owner = called_name(owner)
    if not callable(value):
        raise TypeError(f"{owner}: {name}={value!r} is not a schedule "
                        "(a function step -> value)")


def check_flag(owner: str, name: str, value) -> bool:
    """A ``True``/``False`` option."""
    owner = called_name(owner)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name}={value!r} must be True or False")
    return bool(value)


def named(name: str):
    """Give a schedule function the name of its constructor (shown in an optimizer's repr)."""

    def rename(schedule):
        schedule.__name__ = schedule.__qualname__ = name
        return schedule

    return rename


def as_step(step) -> jax.Array:
    """The step as an array: an integer step stays an integer array, except a Python or NumPy
    integer too large for JAX's integer dtype, which becomes a float (Optax's cast)."""
    if isinstance(step, jax.Array):
        return step
    array = np.asarray(step)
    if jnp.issubdtype(array.dtype, jnp.integer):
        limits = jnp.iinfo(jnp.result_type(int))
        if array.size and (array.min() < limits.min or array.max() > limits.max):
            return jnp.asarray(array.astype(np.float64), jnp.result_type(float))
        return jnp.asarray(array, jnp.result_type(int))
    return jnp.asarray(array)


def float_step(step) -> jax.Array:
    """The step as a float array (JAX's default float: float64 under ``jax_enable_x64``)."""
    return jnp.asarray(as_step(step), dtype=jnp.result_type(float))


def holds(step: jax.Array, n: int) -> bool:
    """Whether ``step``'s dtype holds the step count ``n`` (a float step always does, rounded)."""
    return (not jnp.issubdtype(step.dtype, jnp.integer)) or n <= jnp.iinfo(step.dtype).max


def _operand(step: jax.Array, n: int):
    """``n`` as an operand of the step's arithmetic: a Python float for a float step (a large
    Python int would overflow JAX's int32 in 32-bit mode), else the int."""
    return n if jnp.issubdtype(step.dtype, jnp.integer) else float(n)


def before(step, n: int) -> jax.Array:
    """``step < n``, exact for an integer step whatever the size of ``n``."""
    step = as_step(step)
    if not holds(step, n):
        return jnp.ones(jnp.shape(step), bool)
    return step < _operand(step, n)


def steps_since(step, n: int) -> jax.Array:
    """``max(step - n, 0)``, in the step's dtype (0 where the step cannot reach ``n``)."""
    step = as_step(step)
    if not holds(step, n):
        return jnp.zeros_like(step)
    return jnp.maximum(step - _operand(step, n), 0)


def divmod_steps(step, n: int) -> tuple[jax.Array, jax.Array]:
    """``(⌊step / n⌋, step mod n)``, exact for an integer step whatever the size of ``n``."""
    step = as_step(step)
    if not holds(step, n):
        return jnp.zeros_like(step), step
    n = _operand(step, n)
    return step // n, step % n


def marks_reached(step, marks) -> jax.Array:
    """How many of the step counts ``marks`` (sorted integers) are ``<= step``, exactly."""
    step = as_step(step)
    kept = [_operand(step, m) for m in marks if holds(step, m)]
    if not kept:
        return jnp.zeros(jnp.shape(step), jnp.int32)
    return jnp.sum(step[..., None] >= jnp.asarray(kept, step.dtype), axis=-1)
