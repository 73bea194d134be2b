"""The one-cycle policy (Smith & Topin 2018) and its momentum cycle, as PyTorch's ``OneCycleLR``.

Two phases (PyTorch's default): from ``max_lr / div_factor`` up to ``max_lr`` over the first
``pct_start`` of the steps, then down to ``max_lr / (div_factor · final_div_factor)`` at the last
step. Three phases (``three_phase=True``, closest to the paper): up, back down to the initial
value symmetrically, then an annihilation phase to the minimum. Phase ``i`` ends at PyTorch's
(fractional) step ``e_i``: ``pct·T - 1``, [``2·pct·T - 2``,] ``T - 1``; within a phase the value
moves from its start to its end value along a half cosine
``end + (start - end)·(1 + cos(π·p))/2`` or a line ``start + (end - start)·p``, with
``p = (t - e_{i-1}) / (e_i - e_{i-1})`` (``e_0 = 0``).

After the last step (``t >= T``) the value holds the minimum. PyTorch computes one more value
at ``t = T`` by extrapolating the last phase past its end (``p > 1``: back up above the
minimum on the cosine, on down below it along the line) and raises ``ValueError`` if stepped
again.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_choice, check_steps
from gradchain.schedules.base import check_flag, check_value, float_step, named


def _total_steps(owner, total_steps, epochs, steps_per_epoch) -> int:
    if total_steps is not None:
        return check_steps(owner, "total_steps", total_steps)
    if epochs is None or steps_per_epoch is None:
        raise ValueError(f"{owner}: give total_steps, or epochs and steps_per_epoch")
    return (check_steps(owner, "epochs", epochs)
            * check_steps(owner, "steps_per_epoch", steps_per_epoch))


def _phases(owner, total, pct_start, three_phase) -> tuple[list[float], list[float]]:
    """The (fractional) first and last step of each phase, as PyTorch places them."""
    if isinstance(pct_start, jax.core.Tracer):
        raise TypeError(f"{owner}: pct_start={pct_start!r} must be known when the schedule is "
                        "built (it places the phases), not traced")
    check_value(owner, "pct_start", pct_start, 0, 1)
    pct_start = float(pct_start)
    ends = ([pct_start * total - 1, 2 * pct_start * total - 2, total - 1.0] if three_phase
            else [pct_start * total - 1, total - 1.0])
    starts = [0.0] + ends[:-1]
    if any(e <= s for s, e in zip(starts, ends)):
        raise ValueError(f"{owner}: pct_start={pct_start!r} with total_steps={total} leaves a "
                         f"phase without steps (phase ends at steps {ends}); every phase must "
                         "end after it starts")
    return starts, ends


def _one_cycle(owner, total, pct_start, anneal_strategy, three_phase, values):
    """``step -> value`` through the phases; ``values`` are the phase boundary values."""
    starts, ends = _phases(owner, total, pct_start, three_phase)
    check_choice(owner, "anneal_strategy", anneal_strategy, ("cos", "linear"))

    def anneal(start, end, p):
        if anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * p) + 1)
        return (end - start) * p + start

    def phase(i, t):
        return anneal(values[i], values[i + 1], (t - starts[i]) / (ends[i] - starts[i]))

    def schedule(step):
        t = jnp.minimum(float_step(step), float(total - 1))
        value = phase(len(ends) - 1, t)
        for i in reversed(range(len(ends) - 1)):
            value = jnp.where(t <= ends[i], phase(i, t), value)
        return value

    return schedule


@public
def one_cycle_lr(max_lr, total_steps: Optional[int] = None, pct_start=0.3,
                 anneal_strategy: str = "cos", div_factor=25.0, final_div_factor=1e4,
                 three_phase: bool = False, *, epochs: Optional[int] = None,
                 steps_per_epoch: Optional[int] = None):
    """The one-cycle learning rate (PyTorch's ``OneCycleLR``, same arguments and defaults).

    Starts at ``max_lr / div_factor``, peaks at ``max_lr`` at step ``pct_start·T - 1``, ends at
    ``max_lr / div_factor / final_div_factor`` at step ``T - 1`` (``T = total_steps``, or
    ``epochs · steps_per_epoch``). See the module docstring for the phases and for what
    happens after ``T``. Pair it with ``one_cycle_momentum`` for PyTorch's
    ``cycle_momentum=True``.

    Args:
      max_lr: the peak value.
      total_steps: T, the cycle's length (or give ``epochs`` and ``steps_per_epoch``).
      pct_start: the fraction of T spent rising.
      anneal_strategy: ``"cos"`` or ``"linear"``.
      div_factor: the start value is ``max_lr / div_factor``.
      final_div_factor: the end value is ``max_lr / div_factor / final_div_factor``.
      three_phase: PyTorch's three-phase form (back down to the start value, then to the end).
      epochs: with ``steps_per_epoch``, ``T = epochs · steps_per_epoch``.
      steps_per_epoch: see ``epochs``.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.
    """
    owner = "one_cycle_lr"
    check_value(owner, "max_lr", max_lr)
    total = _total_steps(owner, total_steps, epochs, steps_per_epoch)
    check_value(owner, "div_factor", div_factor, 0, low_open=True)
    check_value(owner, "final_div_factor", final_div_factor, 0, low_open=True)
    three_phase = check_flag(owner, "three_phase", three_phase)
    initial = max_lr / div_factor
    minimum = initial / final_div_factor
    values = ([initial, max_lr, initial, minimum] if three_phase
              else [initial, max_lr, minimum])
    return named(owner)(_one_cycle(owner, total, pct_start, anneal_strategy, three_phase,
                                   values))


@public
def one_cycle_momentum(total_steps: Optional[int] = None, pct_start=0.3,
                       anneal_strategy: str = "cos", base_momentum=0.85, max_momentum=0.95,
                       three_phase: bool = False, *, epochs: Optional[int] = None,
                       steps_per_epoch: Optional[int] = None):
    """The momentum (or Adam's β1) cycle of PyTorch's ``OneCycleLR(cycle_momentum=True)``.

    Inverse to the learning rate: ``max_momentum`` → ``base_momentum`` while the learning rate
    rises, back to ``max_momentum`` while it falls (three phases: and held there during the
    last). Give it the same ``total_steps``, ``pct_start``, ``anneal_strategy`` and
    ``three_phase`` as the ``one_cycle_lr`` it mirrors, e.g.
    ``sgd(one_cycle_lr(0.1, 1000), momentum=one_cycle_momentum(1000))``.

    Args:
      total_steps: T, as in the ``one_cycle_lr`` it mirrors.
      pct_start: the fraction of T during which the learning rate rises.
      anneal_strategy: ``"cos"`` or ``"linear"``.
      base_momentum: the lowest momentum, where the learning rate peaks.
      max_momentum: the momentum at both ends.
      three_phase: PyTorch's three-phase form.
      epochs: with ``steps_per_epoch``, ``T = epochs · steps_per_epoch``.
      steps_per_epoch: see ``epochs``.

    Returns:
      A schedule: a pure function ``step -> value`` of an integer step (or an array of steps),
      traceable inside ``jit``, equal by value to one built with equal arguments.
    """
    owner = "one_cycle_momentum"
    total = _total_steps(owner, total_steps, epochs, steps_per_epoch)
    check_value(owner, "base_momentum", base_momentum)
    check_value(owner, "max_momentum", max_momentum)
    three_phase = check_flag(owner, "three_phase", three_phase)
    values = ([max_momentum, base_momentum, max_momentum, max_momentum] if three_phase
              else [max_momentum, base_momentum, max_momentum])
    return named(owner)(_one_cycle(owner, total, pct_start, anneal_strategy, three_phase,
                                   values))
