"""Pictures of schedules and of the learning-rate range test, with matplotlib.

matplotlib is an optional dependency, imported only when a function here is called. The
functions draw on a given ``ax`` or on a new figure (not through ``pyplot``, so no window or
backend is involved), write it to ``path`` if given, and return the figure.
"""

from __future__ import annotations

import itertools
from typing import Callable, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np


def _figure(ax, size):
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("gradchain.tools.plotting needs matplotlib (pip install matplotlib)") \
            from error
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.subplots()


def schedule_values(schedule: Callable, steps: Union[int, Sequence[int]]) -> np.ndarray:
    """``schedule`` evaluated at ``steps`` (``range(steps)`` for an int), in one vmapped call."""
    steps = jnp.arange(steps) if isinstance(steps, int) else jnp.asarray(steps)
    return np.asarray(jax.vmap(schedule)(steps))


def plot_schedules(schedules: Union[Mapping[str, Callable], Callable],
                   steps: Union[int, Sequence[int]], path=None, *, ax=None,
                   log: bool = False, title: Optional[str] = None, ylabel: str = "value"):
    """Plot one or more schedules (a schedule, or ``{label: schedule}``) against the step.

    Args:
      schedules: a schedule, or ``{label: schedule}`` (one curve each, with a legend).
      steps: the number of steps (from 0) or the steps themselves.
      path: where to save the figure (a file name matplotlib knows the format of), or None.
      ax: a matplotlib ``Axes`` to draw into (default: a new figure).
      log: a log-scale value axis.
      title: the title, or None.
      ylabel: the value axis's label.

    Returns:
      The matplotlib ``Figure`` (matplotlib is imported only when this is called).
    """
    if callable(schedules):
        schedules = {getattr(schedules, "__name__", "schedule"): schedules}
    figure, ax = _figure(ax, (7, 4))
    xs = np.arange(steps) if isinstance(steps, int) else np.asarray(steps)
    styles = itertools.cycle(["-", "--", "-.", ":"])  # curves that coincide stay visible
    for (label, schedule), style in zip(schedules.items(), styles):
        ax.plot(xs, schedule_values(schedule, xs), style, label=label, linewidth=1.6)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(schedules) > 1:
        ax.legend(fontsize="small", framealpha=0.6)
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


def plot_lr_finder(result, path=None, *, ax=None, title: Optional[str] = None):
    """The range test's loss against the learning rate (log scale), the suggestion marked.

    Args:
      result: what ``gradchain.lr_finder`` returned (an ``LRFinderResult``).
      path: where to save the figure, or None.
      ax: a matplotlib ``Axes`` to draw into (default: a new figure).
      title: the title (default: "learning-rate range test").

    Returns:
      The matplotlib ``Figure``.
    """
    figure, ax = _figure(ax, (7, 4.5))
    rates, raw, smooth = (np.asarray(result.learning_rates), np.asarray(result.losses),
                          np.asarray(result.smoothed_losses))
    ax.plot(rates, raw, color="0.75", linewidth=0.8, label="loss of each batch")
    ax.plot(rates, smooth, color="C0", linewidth=2, label="smoothed loss")
    finite = smooth[np.isfinite(smooth)]
    top = min(np.max(finite), 2 * finite[0]) if finite.size else 1.0
    lows = np.concatenate([finite, raw[np.isfinite(raw)]])
    bottom = np.min(lows) if lows.size else 0.0
    ax.set_ylim(bottom - 0.05 * (top - bottom), top + 0.1 * (top - bottom))
    ax.axvline(result.suggestion, color="C2", linestyle="--",
               label=f"suggested lr {result.suggestion:.2g}")
    stop = "diverged" if result.diverged else "stopped"
    ax.axvline(result.stop_lr, color="C3", linestyle=":", label=f"{stop} at {result.stop_lr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title or "learning-rate range test")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
