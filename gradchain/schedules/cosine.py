"""Cosine annealing (Loshchilov & Hutter 2017, SGDR), with and without warm restarts.

PyTorch's ``CosineAnnealingLR`` and ``CosineAnnealingWarmRestarts``, and Optax's
``cosine_decay_schedule`` and ``warmup_cosine_decay_schedule``, all in closed form.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from gradchain.core.public import public
from gradchain.core.validation import check_steps, is_concrete_number
from gradchain.schedules.base import (as_step, check_value, divmod_steps, float_step, holds,
                                      marks_reached, named)
from gradchain.schedules.join import linear_warmup

_LAST_STEP = np.iinfo(np.int64).max  # the largest step any integer step dtype can hold


@public
def cosine_annealing_lr(init_value, T_max: int, eta_min=0.0):
    """``v_t = η_min + (init_value - η_min) · (1 + cos(π · min(t, T_max) / T_max)) / 2``.

    PyTorch's ``CosineAnnealingLR`` (notes 003): equal to it for ``t <= T_max``. After
    ``T_max`` this schedule holds ``η_min``. PyTorch does not: its recursive update keeps
    following the cosine, so its learning rate climbs back to ``init_value`` at ``2·T_max`` and
    oscillates with period ``2·T_max`` for as long as it is stepped. Use
    ``cosine_annealing_warm_restarts`` for deliberate restarts.

    Args:
      init_value: the value at step 0 (a number, array or traced value).
      T_max: the step ``>= 1`` at which the value reaches ``eta_min``.
      eta_min: η_min, the value from ``T_max`` on.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.cosine_annealing_lr(1.0, T_max=4)
      >>> schedule(jnp.arange(6)).tolist()
      [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    """
    owner = "cosine_annealing_lr"
    check_value(owner, "init_value", init_value)
    T_max = float(check_steps(owner, "T_max", T_max))
    check_value(owner, "eta_min", eta_min)

    @named(owner)
    def schedule(step):
        t = jnp.minimum(float_step(step), T_max)
        return eta_min + (init_value - eta_min) * (1 + jnp.cos(jnp.pi * t / T_max)) / 2

    return schedule


@public
def cosine_annealing_warm_restarts(init_value, T_0: int, T_mult: int = 1, eta_min=0.0):
    """SGDR: cosine annealing from ``init_value`` to ``η_min``, restarted at ``init_value``.

    ``v_t = η_min + (init_value - η_min) · (1 + cos(π · T_cur / T_i)) / 2`` where cycle ``i``
    (from 0) lasts ``T_i = T_0 · T_mult^i`` steps and ``T_cur`` counts the steps since it began;
    restarts happen at ``T_0``, ``T_0 (1 + T_mult)``, ``T_0 (1 + T_mult + T_mult²)``, ...
    PyTorch's ``CosineAnnealingWarmRestarts`` stepped once per update (``T_mult`` an integer
    >= 1, as there). The last step of a cycle is just above ``η_min``; ``η_min`` itself is never
    reached. Restart points are computed exactly in integers (PyTorch's ``step(epoch)`` path
    uses a floating-point logarithm for them).

    Args:
      init_value: the value at step 0 (a number, array or traced value).
      T_0: the length ``>= 1`` of the first cycle.
      T_mult: the growth factor ``>= 1`` (an integer) of each cycle's length.
      eta_min: η_min, the value each cycle anneals towards.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.cosine_annealing_warm_restarts(1.0, T_0=3)
      >>> schedule(jnp.arange(6)).tolist()
      [1.0, 0.75, 0.25, 1.0, 0.75, 0.25]
    """
    owner = "cosine_annealing_warm_restarts"
    check_value(owner, "init_value", init_value)
    T_0 = check_steps(owner, "T_0", T_0)
    T_mult = check_steps(owner, "T_mult", T_mult)
    check_value(owner, "eta_min", eta_min)
    starts, lengths = [0], [T_0]
    while T_mult > 1 and starts[-1] + lengths[-1] <= _LAST_STEP:
        starts.append(starts[-1] + lengths[-1])
        lengths.append(lengths[-1] * T_mult)

    @named(owner)
    def schedule(step):
        step = as_step(step)
        if T_mult == 1:
            t_cur, t_i = float_step(divmod_steps(step, T_0)[1]), float(T_0)
        else:
            cycle = marks_reached(step, starts[1:])
            reachable = [s for s in starts if holds(step, s)]
            t_cur = float_step(step - jnp.asarray(reachable, step.dtype)[cycle])
            t_i = jnp.asarray(lengths[:len(reachable)], t_cur.dtype)[cycle]
        return eta_min + (init_value - eta_min) * (1 + jnp.cos(jnp.pi * t_cur / t_i)) / 2

    return schedule


@public
def cosine_decay_schedule(init_value, decay_steps: int, alpha=0.0, exponent=1.0):
    """Optax's ``cosine_decay_schedule``:
    ``v_t = init_value · ((1 - α) · c_t^exponent + α)``, ``c_t = (1 + cos(π · min(t, T)/T)) / 2``,
    ``T = decay_steps``; ``α · init_value`` after ``T``.

    Args:
      init_value: the value at step 0 (a number, array or traced value).
      decay_steps: T ``>= 1``, the length of the decay.
      alpha: α, the final value as a fraction of ``init_value``.
      exponent: the power of the cosine factor.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.
    """
    owner = "cosine_decay_schedule"
    check_value(owner, "init_value", init_value)
    decay_steps = float(check_steps(owner, "decay_steps", decay_steps))
    check_value(owner, "alpha", alpha)
    check_value(owner, "exponent", exponent, 0)

    @named(owner)
    def schedule(step):
        t = jnp.minimum(float_step(step), decay_steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * t / decay_steps))
        return init_value * ((1 - alpha) * jnp.power(cosine, exponent) + alpha)

    return schedule


@public
def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps: int, decay_steps: int,
                                 end_value=0.0, exponent=1.0):
    """Optax's ``warmup_cosine_decay_schedule``: a linear warm-up from ``init_value`` to
    ``peak_value`` over ``warmup_steps``, then cosine decay to ``end_value`` at ``decay_steps``
    (which counts the warm-up), held after.

    Args:
      init_value: the value at step 0.
      peak_value: the value at the end of the warm-up.
      warmup_steps: the warm-up's length ``>= 0``.
      decay_steps: the step at which the decay ends, counted from 0 (warm-up included).
      end_value: the value from ``decay_steps`` on.
      exponent: the power of the cosine factor.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=4)
      >>> schedule(jnp.arange(6)).tolist()
      [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    owner = "warmup_cosine_decay_schedule"
    # checked here: what the ratio end/peak and the decay's length need; the rest (init_value,
    # exponent) by linear_warmup and cosine_decay_schedule, under this function's name
    check_value(owner, "peak_value", peak_value)
    warmup_steps = check_steps(owner, "warmup_steps", warmup_steps, 0)
    decay_steps = check_steps(owner, "decay_steps", decay_steps, warmup_steps + 1)
    check_value(owner, "end_value", end_value)
    peak_is_zero = is_concrete_number(peak_value) and np.all(np.asarray(peak_value) == 0)
    alpha = 0.0 if peak_is_zero else end_value / peak_value
    decay = cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)
    return named("warmup_cosine_decay_schedule")(linear_warmup(decay, warmup_steps, init_value))
