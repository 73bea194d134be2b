"""The learning rate for a new batch size (notes 003): the linear and the square-root rule.

Both start from a learning rate ``γ`` tuned at batch size ``B`` and give the one for batch size
``B' = k·B``:

- linear scaling (Goyal et al. 2017, "Accurate, Large Minibatch SGD"): ``γ' = k·γ``. One step
  on ``k`` batches at once then moves the weights about as far as ``k`` steps on one batch each,
  as long as the gradient changes little over those ``k`` steps. It changes fastest early in
  training, so the paper raises the rate gradually: linearly from ``γ`` to ``k·γ`` over the
  first 5 epochs ("gradual warm-up"), then follows the usual schedule from ``k·γ``.
- square-root scaling (Hoffer et al. 2017, "Train longer, generalize better"): ``γ' = √k·γ``
  keeps the covariance of the weight update (the gradient noise) the same.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

from gradchain.core.public import public
from gradchain.core.validation import check_choice, check_steps
from gradchain.schedules.base import check_value, named
from gradchain.schedules.constant import constant_schedule
from gradchain.schedules.join import linear_warmup

_RULES = ("linear", "sqrt")


@public
def scale_learning_rate(learning_rate, base_batch_size: int, batch_size: int, *,
                        rule: str = "linear"):
    """The learning rate for ``batch_size``: ``k·γ`` (``rule="linear"``) or ``√k·γ``
    (``rule="sqrt"``), ``k = batch_size / base_batch_size``.

    Args:
      learning_rate: γ, the rate tuned at ``base_batch_size`` (a number or array).
      base_batch_size: the batch size ``>= 1`` γ was tuned at.
      batch_size: the batch size ``>= 1`` to train at.
      rule: ``"linear"`` or ``"sqrt"``.

    Returns:
      The scaled rate γ' (a number, or an array for an array γ); not a schedule.
    """
    owner = "scale_learning_rate"
    check_value(owner, "learning_rate", learning_rate, 0)
    base_batch_size = check_steps(owner, "base_batch_size", base_batch_size)
    batch_size = check_steps(owner, "batch_size", batch_size)
    check_choice(owner, "rule", rule, _RULES)
    k = batch_size / base_batch_size
    return learning_rate * (k if rule == "linear" else math.sqrt(k))


@public
def linear_scaling_rule(learning_rate, base_batch_size: int, batch_size: int):
    """Goyal et al. 2017: ``γ' = γ · batch_size / base_batch_size``.

    Args:
      learning_rate: γ, the rate tuned at ``base_batch_size``.
      base_batch_size: the batch size ``>= 1`` γ was tuned at.
      batch_size: the batch size ``>= 1`` to train at.

    Returns:
      The scaled rate γ'.

    Example:
      >>> from gradchain import schedules
      >>> schedules.linear_scaling_rule(0.1, 256, 1024)
      0.4
    """
    return scale_learning_rate(learning_rate, base_batch_size, batch_size, rule="linear")


@public
def sqrt_scaling_rule(learning_rate, base_batch_size: int, batch_size: int):
    """Hoffer et al. 2017: ``γ' = γ · √(batch_size / base_batch_size)``.

    Args:
      learning_rate: γ, the rate tuned at ``base_batch_size``.
      base_batch_size: the batch size ``>= 1`` γ was tuned at.
      batch_size: the batch size ``>= 1`` to train at.

    Returns:
      The scaled rate γ'.

    Example:
      >>> from gradchain import schedules
      >>> schedules.sqrt_scaling_rule(0.1, 256, 1024)
      0.2
    """
    return scale_learning_rate(learning_rate, base_batch_size, batch_size, rule="sqrt")


@public
def batch_size_warmup(learning_rate, base_batch_size: int, batch_size: int,
                      warmup_steps: int, *, rule: str = "linear",
                      then: Optional[Callable] = None):
    """A ready schedule for the larger batch: Goyal et al.'s gradual warm-up to the scaled rate.

    ``v_t = γ + (γ' - γ) · t / W`` for ``t < W = warmup_steps`` (the paper uses 5 epochs), then
    ``γ'`` (``γ'`` from ``scale_learning_rate`` with ``rule``). ``then``, if given, builds what
    follows the warm-up from the scaled rate: ``then(γ')`` is a schedule started at step
    ``W``, e.g. ``then=lambda lr: multi_step_lr(lr, [30 * steps_per_epoch], 0.1)``.

    Args:
      learning_rate: γ, the rate tuned at ``base_batch_size``.
      base_batch_size: the batch size ``>= 1`` γ was tuned at.
      batch_size: the batch size ``>= 1`` to train at.
      warmup_steps: W ``>= 0``, the warm-up's length.
      rule: ``"linear"`` or ``"sqrt"`` (see ``scale_learning_rate``).
      then: ``then(γ') -> schedule``, what follows the warm-up; None: constant γ'.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.
    """
    owner = "batch_size_warmup"
    peak = scale_learning_rate(learning_rate, base_batch_size, batch_size, rule=rule)
    warmup_steps = check_steps(owner, "warmup_steps", warmup_steps, 0)
    if then is not None and not callable(then):
        raise TypeError(f"{owner}: then={then!r} is not a function (peak -> schedule)")
    after = constant_schedule(peak) if then is None else then(peak)
    if not callable(after):
        raise TypeError(f"{owner}: then({peak!r}) returned {after!r}, not a schedule "
                        "(a function step -> value)")
    if warmup_steps == 0:
        return after
    return named(owner)(linear_warmup(after, warmup_steps, learning_rate))
