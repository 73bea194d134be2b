"""Schedules joined at step boundaries, and a linear warm-up in front of any schedule."""

from __future__ import annotations

from typing import Callable, Sequence

import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_steps
from gradchain.schedules.base import (as_step, before, check_schedule, check_value, float_step,
                                      named, steps_since)
from gradchain.schedules.constant import constant_schedule


@public
def join_schedules(schedules: Sequence[Callable], boundaries: Sequence[int]):
    """Run ``schedules[i]`` from ``boundaries[i-1]`` on, restarting its step at 0 there.

    ``v_t = s_i(t - b_i)`` for ``b_i <= t < b_{i+1}`` (``b_0 = 0``); Optax's ``join_schedules``.
    ``boundaries`` are non-decreasing integers, one fewer than ``schedules``.

    Args:
      schedules: the schedules, in order.
      boundaries: the steps at which the next schedule takes over, non-decreasing integers, one
        fewer than ``schedules``.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.join_schedules([schedules.constant_schedule(1.0), schedules.constant_schedule(0.5)], [3])
      >>> schedule(jnp.arange(6)).tolist()
      [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    """
    owner = "join_schedules"
    for name, value in (("schedules", schedules), ("boundaries", boundaries)):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError(f"{owner}: {name}={value!r} is not a sequence")
    schedules, boundaries = list(schedules), list(boundaries)
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"{owner}: {len(schedules)} schedules need "
                         f"{len(schedules) - 1} boundaries, got {len(boundaries)}")
    for i, s in enumerate(schedules):
        check_schedule(owner, f"schedules[{i}]", s)
    boundaries = [check_steps(owner, f"boundaries[{i}]", b, 0) for i, b in enumerate(boundaries)]
    if sorted(boundaries) != boundaries:
        raise ValueError(f"{owner}: boundaries={boundaries} must be non-decreasing")

    @named(owner)
    def schedule(step):
        step = as_step(step)
        value = schedules[0](step)
        for boundary, later in zip(boundaries, schedules[1:]):
            value = jnp.where(before(step, boundary), value, later(steps_since(step, boundary)))
        return value

    return schedule


@public
def linear_warmup(schedule: Callable, warmup_steps: int, init_value=0.0):
    """``schedule`` delayed by ``warmup_steps``, reached by a straight line from ``init_value``.

    ``v_t = init_value + (s(0) - init_value) · t / W`` for ``t < W``, then ``v_t = s(t - W)``:
    the warm-up ends exactly where ``schedule`` starts, whatever it is (a decay, a cycle, a
    constant). ``warmup_steps = 0`` gives ``schedule`` itself.

    Args:
      schedule: the schedule that follows the warm-up (started at step 0 there).
      warmup_steps: W ``>= 0``, the warm-up's length.
      init_value: the value at step 0.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.linear_warmup(schedules.constant_schedule(1.0), warmup_steps=4)
      >>> schedule(jnp.arange(6)).tolist()
      [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    owner = "linear_warmup"
    check_schedule(owner, "schedule", schedule)
    warmup_steps = check_steps(owner, "warmup_steps", warmup_steps, 0)
    check_value(owner, "init_value", init_value)
    if warmup_steps == 0:
        return schedule

    @named(owner)
    def warmed(step):
        step = as_step(step)
        peak = schedule(jnp.zeros_like(step))
        ramp = init_value + (peak - init_value) * float_step(step) / float(warmup_steps)
        return jnp.where(before(step, warmup_steps), ramp,
                         schedule(steps_since(step, warmup_steps)))

    return warmed


@public
def warmup_constant_schedule(init_value, peak_value, warmup_steps: int):
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then
    ``peak_value`` (Optax's ``warmup_constant_schedule``; with ``warmup_steps = 0`` Optax holds
    ``init_value`` for ever, here the value is ``peak_value`` from the start).

    Args:
      init_value: the value at step 0.
      peak_value: the value from ``warmup_steps`` on.
      warmup_steps: the warm-up's length ``>= 0``.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.
    """
    # peak_value is constant_schedule's value: checked here under its own name; linear_warmup
    # checks init_value and warmup_steps, under this function's name (core/public.py)
    check_value("warmup_constant_schedule", "peak_value", peak_value)
    # linear_warmup returns a new function (or the new constant schedule): safe to rename
    return named("warmup_constant_schedule")(
        linear_warmup(constant_schedule(peak_value), warmup_steps, init_value))
