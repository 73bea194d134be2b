"""Polynomial and linear transitions from one value to another over a fixed number of steps.

PyTorch's ``PolynomialLR`` and ``LinearLR`` (a factor of the initial value) and Optax's
``polynomial_schedule`` and ``linear_schedule`` (two end values, an optional delay). All hold
their final value after the transition, as both libraries do.
"""

from __future__ import annotations

import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_steps
from gradchain.schedules.base import check_value, float_step, named, steps_since


@public
def polynomial_lr(init_value, total_iters: int = 5, power=1.0):
    """``v_t = init_value · (1 - min(t, T) / T)^power``, ``T = total_iters`` (PyTorch's
    ``PolynomialLR``, same defaults): 0 from step ``T`` on.

    Args:
      init_value: the value at step 0 (a number, array or traced value).
      total_iters: T ``>= 1``, the step at which the value reaches 0.
      power: the exponent.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.polynomial_lr(1.0, total_iters=4)
      >>> schedule(jnp.arange(6)).tolist()
      [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    check_value("polynomial_lr", "init_value", init_value)
    total_iters = float(check_steps("polynomial_lr", "total_iters", total_iters))
    check_value("polynomial_lr", "power", power, 0)

    @named("polynomial_lr")
    def schedule(step):
        # (T - t)/T, not 1 - t/T: XLA may divide by a constant as a multiplication by its
        # reciprocal, and 1 - t/T can then come out as -1e-16 at t = T (NaN for power < 1).
        remaining = total_iters - jnp.minimum(float_step(step), total_iters)
        return init_value * jnp.power(remaining / total_iters, power)

    return schedule


@public
def linear_lr(init_value, start_factor=1.0 / 3, end_factor=1.0, total_iters: int = 5):
    """``v_t = init_value · (f_0 + (f_1 - f_0) · min(t, T) / T)`` (PyTorch's ``LinearLR``, same
    defaults): the factor moves linearly from ``start_factor`` f_0 to ``end_factor`` f_1 over
    ``T = total_iters`` steps, then stays at f_1. PyTorch allows f_0 in (0, 1], f_1 in [0, 1].

    Args:
      init_value: the value at step 0 (a number, array or traced value).
      start_factor: f_0, the multiplier at step 0.
      end_factor: f_1, the multiplier from ``total_iters`` on.
      total_iters: T ``>= 1``.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.
    """
    check_value("linear_lr", "init_value", init_value)
    check_value("linear_lr", "start_factor", start_factor, 0, 1, low_open=True)
    check_value("linear_lr", "end_factor", end_factor, 0, 1)
    total_iters = float(check_steps("linear_lr", "total_iters", total_iters))

    @named("linear_lr")
    def schedule(step):
        t = jnp.minimum(float_step(step), total_iters)
        return init_value * (start_factor + (end_factor - start_factor) * t / total_iters)

    return schedule


@public
def polynomial_schedule(init_value, end_value, power, transition_steps: int,
                        transition_begin: int = 0):
    """Optax's ``polynomial_schedule``: ``init_value`` until ``B = transition_begin``, then
    ``v_t = (I - E) · (1 - (t - B) / T)^power + E`` until ``B + T``, then ``end_value`` E.

    ``transition_steps`` T must be >= 1 (Optax turns T <= 0 into a constant ``init_value``).

    Args:
      init_value: I, the value until ``transition_begin``.
      end_value: E, the value from ``transition_begin + transition_steps`` on.
      power: the exponent.
      transition_steps: T ``>= 1``.
      transition_begin: B ``>= 0``.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.
    """
    owner = "polynomial_schedule"
    check_value(owner, "init_value", init_value)
    check_value(owner, "end_value", end_value)
    check_value(owner, "power", power, 0)
    transition_steps = float(check_steps(owner, "transition_steps", transition_steps))
    transition_begin = check_steps(owner, "transition_begin", transition_begin, 0)

    @named(owner)
    def schedule(step):
        t = jnp.minimum(float_step(steps_since(step, transition_begin)), transition_steps)
        remaining = (transition_steps - t) / transition_steps  # >= 0, see polynomial_lr
        return (init_value - end_value) * jnp.power(remaining, power) + end_value

    return schedule


@public
def linear_schedule(init_value, end_value, transition_steps: int, transition_begin: int = 0):
    """Optax's ``linear_schedule``: a straight line from ``init_value`` at ``transition_begin``
    to ``end_value`` at ``transition_begin + transition_steps``; constant outside. With
    ``init_value = 0`` it is the plain linear warm-up.

    Args:
      init_value: the value until ``transition_begin``.
      end_value: the value from ``transition_begin + transition_steps`` on.
      transition_steps: the line's length ``>= 1``.
      transition_begin: the step ``>= 0`` where the line starts.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.linear_schedule(0.0, 1.0, transition_steps=4)
      >>> schedule(jnp.arange(6)).tolist()
      [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    # polynomial_schedule checks every argument, under this function's name (core/public.py)
    return named("linear_schedule")(
        polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin))
