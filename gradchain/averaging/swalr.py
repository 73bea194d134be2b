"""SWA's learning rate: anneal to a constant (PyTorch's ``SWALR``, in closed form)."""

from __future__ import annotations

import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_choice, check_steps
from gradchain.schedules.base import check_value, float_step, named
from gradchain.core.transformation import GradientTransformation

ANNEALING = {
    "cos": lambda t: (1 - jnp.cos(jnp.pi * t)) / 2,
    "linear": lambda t: t,
}


@public
def swalr(init_value, swa_lr, anneal_epochs: int = 10,
          anneal_strategy: str = "cos") -> GradientTransformation:
    """``v_t = swa_lr · α(τ) + init_value · (1 - α(τ))``, ``τ = min(t / anneal_epochs, 1)``.

    PyTorch's ``SWALR`` stepped ``t`` times from a learning rate of ``init_value``: it anneals to
    ``swa_lr`` over ``anneal_epochs`` steps, with ``α(τ) = (1 - cos(πτ))/2`` (``"cos"``) or
    ``α(τ) = τ`` (``"linear"``), then holds ``swa_lr``; with ``anneal_epochs = 0`` it is
    ``swa_lr`` from step 0. PyTorch recovers its starting rate from the current one at every
    step; the closed form gives the same numbers. Like every schedule here it counts updates:
    to step it once per epoch, as PyTorch's examples do, give it the epoch (for instance
    ``lambda step: s(step // steps_per_epoch)``). After a schedule ``before`` that runs for
    ``n`` steps, ``join_schedules([before, swalr(before(n), swa_lr)], [n])``.

    Args:
      init_value: the learning rate annealing starts from.
      swa_lr: the learning rate it anneals to and holds.
      anneal_epochs: the number of steps the annealing takes, a whole number ``>= 0``.
      anneal_strategy: ``"cos"`` (PyTorch's default) or ``"linear"``.

    Returns:
      The schedule, a function ``step -> value``.

    Example:
      >>> import gradchain as gc
      >>> schedule = gc.swalr(1.0, 0.1, anneal_epochs=4, anneal_strategy="linear")
      >>> [round(float(schedule(t)), 3) for t in range(6)]
      [1.0, 0.775, 0.55, 0.325, 0.1, 0.1]
    """
    owner = "swalr"
    check_value(owner, "init_value", init_value)
    check_value(owner, "swa_lr", swa_lr)
    epochs = check_steps(owner, "anneal_epochs", anneal_epochs, 0)
    alpha = ANNEALING[check_choice(owner, "anneal_strategy", anneal_strategy, tuple(ANNEALING))]

    @named(owner)
    def schedule(step):
        progress = (jnp.ones_like(float_step(step)) if epochs == 0
                    else jnp.minimum(float_step(step) / epochs, 1.0))
        a = alpha(progress)
        return swa_lr * a + init_value * (1 - a)

    return schedule
