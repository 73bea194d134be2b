"""Cyclical learning rates (Smith 2017) and the momentum cycle that mirrors them.

PyTorch's ``CyclicLR``: the value climbs linearly from ``base_lr`` to ``max_lr`` over
``step_size_up`` steps, falls back over ``step_size_down`` steps, and repeats; the amplitude is
scaled per cycle (``triangular``: 1, ``triangular2``: halved each cycle) or per step
(``exp_range``: ``γ^t``). In the symmetric case this is the formula of the notes:
``cycle = ⌊1 + t/(2s)⌋``, ``x = |t/s - 2·cycle + 1|``,
``v_t = base + (max - base) · max(0, 1 - x) · scale``. The cycle never ends.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_choice, check_steps
from gradchain.schedules.base import (as_step, before, check_schedule, check_value, divmod_steps,
                                      float_step, named)

_MODES = ("triangular", "triangular2", "exp_range")


def _cycle(owner, step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode):
    """``step -> (h_t, scale)``, as PyTorch computes them: ``h_t`` the height of the triangle
    in [0, 1] (0 where a cycle starts, 1 at its peak), ``scale`` the amplitude's.

    The cycle number and the position in the cycle are computed in the step's integer dtype
    (``t = (cycle - 1)·P + r``, ``P`` = up + down), so they are exact at every step count; only
    the height ``r/up`` or ``(P - r)/down`` is a float.
    """
    up = check_steps(owner, "step_size_up", step_size_up)
    down = up if step_size_down is None else check_steps(owner, "step_size_down",
                                                         step_size_down)
    period = up + down
    check_value(owner, "gamma", gamma, 0)
    if scale_fn is None:
        check_choice(owner, "mode", mode, _MODES)
        scale_mode = "iterations" if mode == "exp_range" else "cycle"
        scale_fn = {"triangular": lambda x: jnp.ones_like(x),
                    "triangular2": lambda x: 1 / (2.0 ** (x - 1)),
                    "exp_range": lambda x: gamma ** x}[mode]
    else:
        check_schedule(owner, "scale_fn", scale_fn)
        check_choice(owner, "scale_mode", scale_mode, ("cycle", "iterations"))

    def position(step):
        step = as_step(step)
        completed, r = divmod_steps(step, period)
        r_float = float_step(r)
        height = jnp.where(before(r, up + 1), r_float / float(up),
                           (float(period) - r_float) / float(down))
        at = float_step(completed) + 1 if scale_mode == "cycle" else float_step(step)
        return height, scale_fn(at)

    return position


@public
def cyclic_lr(base_lr, max_lr, step_size_up: int = 2000, step_size_down: Optional[int] = None,
              mode: str = "triangular", gamma=1.0, scale_fn: Optional[Callable] = None,
              scale_mode: str = "cycle"):
    """``v_t = base_lr + (max_lr - base_lr) · h_t · scale`` (PyTorch's ``CyclicLR``).

    ``h_t`` rises linearly from 0 to 1 over ``step_size_up`` steps and falls back to 0 over
    ``step_size_down`` (default: ``step_size_up``). ``scale`` is 1 (``mode="triangular"``),
    ``1/2^(cycle-1)`` with ``cycle`` counted from 1 (``"triangular2"``) or ``γ^t``
    (``"exp_range"``). A custom ``scale_fn`` (a ``jax.numpy`` function, values in [0, 1])
    replaces ``mode`` and is given the cycle number or the step (``scale_mode``). Pair it with
    ``cyclic_momentum`` for PyTorch's ``cycle_momentum=True``.

    Args:
      base_lr: the lowest value, at step 0 and at the start of each cycle.
      max_lr: the highest value (before ``scale``).
      step_size_up: steps ``>= 1`` of the rising half.
      step_size_down: steps of the falling half (default: ``step_size_up``).
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
      gamma: γ of ``"exp_range"``.
      scale_fn: a custom scale (a ``jax.numpy`` function with values in ``[0, 1]``), or None.
      scale_mode: what ``scale_fn`` is given: ``"cycle"`` (the cycle number) or ``"iterations"``
        (the step).

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.cyclic_lr(0.0, 1.0, step_size_up=2)
      >>> schedule(jnp.arange(6)).tolist()
      [0.0, 0.5, 1.0, 0.5, 0.0, 0.5]
    """
    check_value("cyclic_lr", "base_lr", base_lr)
    check_value("cyclic_lr", "max_lr", max_lr)
    position = _cycle("cyclic_lr", step_size_up, step_size_down, mode, gamma, scale_fn,
                      scale_mode)

    @named("cyclic_lr")
    def schedule(step):
        height, scale = position(step)
        return base_lr + (max_lr - base_lr) * height * scale

    return schedule


@public
def cyclic_momentum(base_momentum=0.8, max_momentum=0.9, step_size_up: int = 2000,
                    step_size_down: Optional[int] = None, mode: str = "triangular", gamma=1.0,
                    scale_fn: Optional[Callable] = None, scale_mode: str = "cycle"):
    """The inverse cycle: ``μ_t = max_momentum - (max_momentum - base_momentum) · h_t · scale``.

    What PyTorch's ``CyclicLR(cycle_momentum=True)`` writes into ``momentum`` (or Adam's β1):
    momentum is highest where the learning rate is lowest. Give it the same cycle arguments as
    the ``cyclic_lr`` it mirrors, e.g. ``sgd(cyclic_lr(...), momentum=cyclic_momentum(...))``.

    Args:
      base_momentum: the lowest momentum, where the learning rate peaks.
      max_momentum: the highest momentum, at step 0 and at the start of each cycle.
      step_size_up: steps ``>= 1`` of the half where the learning rate rises.
      step_size_down: steps of the other half (default: ``step_size_up``).
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
      gamma: γ of ``"exp_range"``.
      scale_fn: a custom scale, or None.
      scale_mode: what ``scale_fn`` is given: ``"cycle"`` or ``"iterations"``.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.
    """
    check_value("cyclic_momentum", "base_momentum", base_momentum)
    check_value("cyclic_momentum", "max_momentum", max_momentum)
    position = _cycle("cyclic_momentum", step_size_up, step_size_down, mode, gamma, scale_fn,
                      scale_mode)

    @named("cyclic_momentum")
    def schedule(step):
        height, scale = position(step)
        return max_momentum - (max_momentum - base_momentum) * height * scale

    return schedule
