"""Schedules joined at step boundaries, and a linear warm-up in front of any schedule."""

from __future__ import annotations

from typing import Callable, Sequence

import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.schedules.base import check_steps, float_step, named
from gradchain.schedules.constant import constant_schedule


@public
def join_schedules(schedules: Sequence[Callable], boundaries: Sequence[int]):
    """Run ``schedules[i]`` from ``boundaries[i-1]`` on, restarting its step at 0 there.

    ``v_t = s_i(t - b_i)`` for ``b_i <= t < b_{i+1}`` (``b_0 = 0``); Optax's ``join_schedules``.
    ``boundaries`` are non-decreasing integers, one fewer than ``schedules``.
    """
    schedules, boundaries = list(schedules), list(boundaries)
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"join_schedules: {len(schedules)} schedules need "
                         f"{len(schedules) - 1} boundaries, got {len(boundaries)}")
    for i, s in enumerate(schedules):
        if not callable(s):
            raise TypeError(f"join_schedules: schedules[{i}]={s!r} is not a schedule "
                            "(a function step -> value)")
    for i, b in enumerate(boundaries):
        check_steps("join_schedules", f"boundaries[{i}]", b, 0)
    if sorted(boundaries) != boundaries:
        raise ValueError(f"join_schedules: boundaries={boundaries} must be non-decreasing")

    @named("join_schedules")
    def schedule(step):
        step = jnp.asarray(step)
        value = schedules[0](step)
        for boundary, later in zip(boundaries, schedules[1:]):
            value = jnp.where(step < boundary, value, later(step - boundary))
        return value

    return schedule


@public
def linear_warmup(schedule: Callable, warmup_steps: int, init_value=0.0):
    """``schedule`` delayed by ``warmup_steps``, reached by a straight line from ``init_value``.

    ``v_t = init_value + (s(0) - init_value) · t / W`` for ``t < W``, then ``v_t = s(t - W)``:
    the warm-up ends exactly where ``schedule`` starts, whatever it is (a decay, a cycle, a
    constant). ``warmup_steps = 0`` gives ``schedule`` itself.
    """
    if not callable(schedule):
        raise TypeError(f"linear_warmup: schedule={schedule!r} is not a schedule "
                        "(a function step -> value)")
    warmup_steps = check_steps("linear_warmup", "warmup_steps", warmup_steps, 0)
    if warmup_steps == 0:
        return schedule

    @named("linear_warmup")
    def warmed(step):
        step = jnp.asarray(step)
        t = float_step(step)
        peak = schedule(jnp.zeros_like(step))
        ramp = init_value + (peak - init_value) * t / warmup_steps
        return jnp.where(t < warmup_steps, ramp, schedule(step - warmup_steps))

    return warmed


@public
def warmup_constant_schedule(init_value, peak_value, warmup_steps: int):
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then
    ``peak_value`` (Optax's ``warmup_constant_schedule``; with ``warmup_steps = 0`` Optax holds
    ``init_value`` for ever, here the value is ``peak_value`` from the start)."""
    # linear_warmup returns a new function (or the new constant schedule): safe to rename
    return named("warmup_constant_schedule")(
        linear_warmup(constant_schedule(peak_value), warmup_steps, init_value))
