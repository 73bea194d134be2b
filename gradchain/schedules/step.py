"""Step-like decays: every ``step_size`` steps, at milestones, or every step (PyTorch's
``StepLR``, ``MultiStepLR`` and ``ExponentialLR``, in closed form).

None of them ends: they decay for as long as they are stepped, as in PyTorch. PyTorch computes
them recursively (``lr ← lr · γ`` at each decay), which drifts from the closed form by a few
units in the last place after thousands of decays; the closed form here is exact.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np

from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.schedules.base import check_steps, named


@public
def step_lr(init_value, step_size: int, gamma=0.1):
    """``v_t = init_value · γ^⌊t / step_size⌋`` (PyTorch's ``StepLR``, notes 003)."""
    step_size = check_steps("step_lr", "step_size", step_size)
    check_range("step_lr", "gamma", gamma, 0)

    @named("step_lr")
    def schedule(step):
        return init_value * jnp.power(gamma, jnp.asarray(step) // step_size)

    return schedule


@public
def multi_step_lr(init_value, milestones: Sequence[int], gamma=0.1):
    """``v_t = init_value · γ^(number of milestones <= t)`` (PyTorch's ``MultiStepLR``).

    ``milestones`` are integers >= 0, in any order; a milestone listed twice decays twice, as in
    PyTorch (which counts them). A milestone at 0 applies from the first step.
    """
    milestones = [check_steps("multi_step_lr", f"milestones[{i}]", m, 0)
                  for i, m in enumerate(milestones)]
    check_range("multi_step_lr", "gamma", gamma, 0)
    marks = np.sort(np.asarray(milestones, dtype=np.int64))

    @named("multi_step_lr")
    def schedule(step):
        step = jnp.asarray(step)
        passed = jnp.sum(step[..., None] >= marks, axis=-1) if marks.size else 0 * step
        return init_value * jnp.power(gamma, passed)

    return schedule


@public
def exponential_lr(init_value, gamma):
    """``v_t = init_value · γ^t`` (PyTorch's ``ExponentialLR``)."""
    check_range("exponential_lr", "gamma", gamma, 0)

    @named("exponential_lr")
    def schedule(step):
        return init_value * jnp.power(gamma, jnp.asarray(step))

    return schedule
