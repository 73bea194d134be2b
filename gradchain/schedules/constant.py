"""Constant schedules: a value held for ever, and PyTorch's ``ConstantLR``."""

from __future__ import annotations

import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_steps
from gradchain.schedules.base import before, check_value, float_step, named


@public
def constant_schedule(value):
    """``v_t = value`` at every step (Optax's ``constant_schedule``).

    The result has the step's shape, so evaluating it over ``jnp.arange(n)`` gives ``n`` values.

    Args:
      value: the value (a number, array or traced value).

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.constant_schedule(0.5)
      >>> schedule(jnp.arange(6)).tolist()
      [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    """
    check_value("constant_schedule", "value", value)
    return named("constant_schedule")(lambda step: jnp.zeros_like(float_step(step)) + value)


@public
def constant_lr(init_value, factor=1.0 / 3, total_iters: int = 5):
    """``v_t = init_value · factor`` for ``t < total_iters``, then ``init_value``.

    PyTorch's ``ConstantLR`` (same defaults; ``factor`` in ``[0, 1]``).

    Args:
      init_value: the value at step 0 (a number, array or traced value).
      factor: the multiplier in ``[0, 1]`` until ``total_iters``.
      total_iters: the step ``>= 0`` from which the value is ``init_value``.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.constant_lr(1.0, factor=0.5, total_iters=3)
      >>> schedule(jnp.arange(6)).tolist()
      [0.5, 0.5, 0.5, 1.0, 1.0, 1.0]
    """
    check_value("constant_lr", "init_value", init_value)
    check_value("constant_lr", "factor", factor, 0, 1)
    total_iters = check_steps("constant_lr", "total_iters", total_iters, 0)

    @named("constant_lr")
    def schedule(step):
        return init_value * jnp.where(before(step, total_iters), factor, 1.0)

    return schedule
