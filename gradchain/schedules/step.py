"""Step-like decays: every ``step_size`` steps, at milestones, or every step (PyTorch's
``StepLR``, ``MultiStepLR`` and ``ExponentialLR``, in closed form).

None of them ends: they decay for as long as they are stepped, as in PyTorch. PyTorch computes
them recursively (``lr ← lr · γ`` at each decay), which drifts from the closed form by a few
units in the last place after thousands of decays; the closed form here is exact.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_steps
from gradchain.schedules.base import as_step, check_value, divmod_steps, marks_reached, named


@public
def step_lr(init_value, step_size: int, gamma=0.1):
    """``v_t = init_value · γ^⌊t / step_size⌋`` (PyTorch's ``StepLR``, notes 003).

    Args:
      init_value: the value at step 0 (a number, array or traced value).
      step_size: the steps ``>= 1`` between decays.
      gamma: γ ``>= 0``, the factor of each decay.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.step_lr(1.0, step_size=2, gamma=0.5)
      >>> schedule(jnp.arange(6)).tolist()
      [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    check_value("step_lr", "init_value", init_value)
    step_size = check_steps("step_lr", "step_size", step_size)
    check_value("step_lr", "gamma", gamma, 0)

    @named("step_lr")
    def schedule(step):
        return init_value * jnp.power(gamma, divmod_steps(step, step_size)[0])

    return schedule


@public
def multi_step_lr(init_value, milestones: Sequence[int], gamma=0.1):
    """``v_t = init_value · γ^(number of milestones <= t)`` (PyTorch's ``MultiStepLR``).

    ``milestones`` are integers >= 0, in any order; a milestone listed twice decays twice, as in
    PyTorch (which counts them). A milestone at 0 applies from the first step.

    Args:
      init_value: the value at step 0 (a number, array or traced value).
      milestones: the steps (integers ``>= 0``) at which the value is multiplied by γ.
      gamma: γ ``>= 0``, the factor of each decay.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.multi_step_lr(1.0, milestones=[1, 4], gamma=0.5)
      >>> schedule(jnp.arange(6)).tolist()
      [1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    """
    owner = "multi_step_lr"
    check_value(owner, "init_value", init_value)
    if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
        raise TypeError(f"{owner}: milestones={milestones!r} is not a sequence of step counts")
    marks = sorted(check_steps(owner, f"milestones[{i}]", m, 0)
                   for i, m in enumerate(milestones))
    check_value(owner, "gamma", gamma, 0)

    @named(owner)
    def schedule(step):
        return init_value * jnp.power(gamma, marks_reached(step, marks))

    return schedule


@public
def exponential_lr(init_value, gamma):
    """``v_t = init_value · γ^t`` (PyTorch's ``ExponentialLR``).

    Args:
      init_value: the value at step 0 (a number, array or traced value).
      gamma: γ ``>= 0``, the factor of every step.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradchain import schedules
      >>> schedule = schedules.exponential_lr(1.0, gamma=0.5)
      >>> schedule(jnp.arange(6)).tolist()
      [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]
    """
    check_value("exponential_lr", "init_value", init_value)
    check_value("exponential_lr", "gamma", gamma, 0)

    @named("exponential_lr")
    def schedule(step):
        return init_value * jnp.power(gamma, as_step(step))

    return schedule
