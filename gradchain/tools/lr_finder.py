"""The learning-rate range test (Smith 2017, section 3.3; notes 003, "finding a good initial
learning rate").

Train from the given params with any gradchain optimizer while raising its learning rate every
step from a tiny value (1e-7) to a large one, exponentially or linearly; record the loss of each
batch and its exponentially smoothed, bias-corrected average; stop once the smoothed loss
exceeds a multiple of the best seen, or the loss is no longer finite. The loss first falls
slowly (the rate is too small to matter), then fast, then blows up. A good initial rate lies a
little before the blow-up: by default an order of magnitude below the rate of the lowest
smoothed loss (``suggest="minimum"``, fastai's ``lr_min``), or where the smoothed loss falls
fastest per decade of rate (``suggest="steepest"``).

The learning rate is changed through the optimizer's state (``set_hyperparams``), inside one
compiled step: any optimizer whose ``learning_rate`` (or the hyperparameter named by
``hyperparam``) is a number, however deeply nested, works without being rebuilt. The caller's
params are never changed: the test trains a copy and only returns the curve.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.public import public
from gradchain.core.updates import apply_updates
from gradchain.core.validation import check_choice, check_range, check_steps
from gradchain.introspection.hyperparams import set_hyperparams


class LRFinderResult(NamedTuple):
    """The curve of a range test.

    ``learning_rates[i]`` is the rate of update ``i``; ``losses[i]`` the loss of batch ``i`` at
    the params before that update, ``smoothed_losses[i]`` their smoothed average. ``stop_lr``
    is the rate at which the test stopped (``diverged``: because the loss blew up, not because
    it ran out of steps or batches); ``suggestion`` the suggested initial learning rate.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggestion: float
    stop_lr: float
    diverged: bool

    def plot(self, path=None, *, ax=None):
        """Draw the curve with the suggestion marked (``gradchain.tools.plotting.plot_lr_finder``)."""
        from gradchain.tools.plotting import plot_lr_finder

        return plot_lr_finder(self, path, ax=ax)


@public
def lr_finder(loss_fn: Callable, params, batches: Iterable, optimizer, *, start_lr=1e-7,
              end_lr=10.0, num_steps: int = 100, mode: str = "exponential", smoothing=0.9,
              diverge_threshold=4.0, suggest: str = "minimum",
              hyperparam: str = "learning_rate", progress: bool = True) -> LRFinderResult:
    """Run the range test and suggest an initial learning rate.

    Args:
      loss_fn: ``(params, batch) -> scalar loss``.
      params: the starting params (left unchanged).
      batches: an iterable of batches; one is drawn per step (the test ends early if it runs
        out; pass ``itertools.cycle(list_of_batches)`` to reuse a few).
      optimizer: any gradchain transformation with a constant ``hyperparam``.
      start_lr: the first rate, ``0 < start_lr < end_lr``.
      end_lr: the last rate.
      num_steps: the number of rates tried (``>= 2``).
      mode: ``"exponential"`` (``γ_i = start · (end/start)^(i/(n-1))``, the usual choice) or
        ``"linear"``.
      smoothing: β of the smoothed loss ``a_i = β a_{i-1} + (1-β) ℓ_i``, reported as
        ``a_i / (1 - β^(i+1))``; 0 disables smoothing. The average spans about ``1/(1-β)``
        steps, so it lags the rate by that many steps: 0.9 is 0.8 decade with the default
        100 steps over 8 decades (fastai's 0.98 would lag 4 decades here).
      diverge_threshold: stop once the smoothed loss exceeds this multiple of the best one.
      suggest: ``"minimum"`` (the rate of the lowest smoothed loss, divided by 10) or
        ``"steepest"`` (the rate where the smoothed loss falls fastest against ``log γ``,
        before its minimum).
      hyperparam: the address of the hyperparameter to sweep (see ``set_hyperparams``).
      progress: show a progress bar.

    Returns:
      An ``LRFinderResult``: ``learning_rates``, ``losses``, ``smoothed_losses`` (NumPy arrays,
      one entry per step taken), ``stop_lr``, ``diverged`` and ``suggestion``; its ``plot(path)``
      draws it (``plot_lr_finder``).
    """
    owner = "lr_finder"
    check_range(owner, "start_lr", start_lr, 0, low_open=True)
    check_range(owner, "end_lr", end_lr, start_lr, low_open=True)
    num_steps = check_steps(owner, "num_steps", num_steps, 2)
    check_choice(owner, "mode", mode, ("exponential", "linear"))
    check_range(owner, "smoothing", smoothing, 0, 1, high_open=True)
    check_range(owner, "diverge_threshold", diverge_threshold, 1, low_open=True)
    check_choice(owner, "suggest", suggest, ("minimum", "steepest"))
    fraction = np.arange(num_steps) / (num_steps - 1)
    if mode == "exponential":
        rates = start_lr * (end_lr / start_lr) ** fraction
    else:
        rates = start_lr + (end_lr - start_lr) * fraction

    @jax.jit
    def step(params, state, rate, batch):
        state = set_hyperparams(optimizer, state, {hyperparam: rate})
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = optimizer.update(grads, state, params)
        return apply_updates(params, updates), state, loss

    params = jax.tree.map(jnp.array, params)  # a copy: the caller's arrays are never touched
    # Set once on the concrete state: an unknown, ambiguous or scheduled address fails here,
    # with the values at hand to compare (inside jit they are traced).
    state = set_hyperparams(optimizer, optimizer.init(params), {hyperparam: rates[0]})
    losses, smoothed = [], []
    average, best, diverged = 0.0, math.inf, False
    bar = _progress_bar(num_steps, progress)
    for i, batch in zip(range(num_steps), batches):
        params, state, loss = step(params, state, rates[i], batch)
        loss = float(loss)
        average = smoothing * average + (1 - smoothing) * loss
        current = average / (1 - smoothing ** (i + 1))
        losses.append(loss)
        smoothed.append(current)
        best = min(best, current)
        if bar is not None:
            bar.set_postfix(lr=f"{rates[i]:.2e}", loss=f"{current:.4g}", refresh=False)
            bar.update()
        if not math.isfinite(loss) or current > diverge_threshold * best:
            diverged = True
            break
    if bar is not None:
        bar.close()
    if not losses:
        raise ValueError(f"{owner}: batches gave no batch")
    n = len(losses)
    rates, smoothed = rates[:n], np.asarray(smoothed)
    return LRFinderResult(rates, np.asarray(losses), smoothed,
                          _suggestion(rates, smoothed, suggest), float(rates[-1]), diverged)


def _progress_bar(total: int, show: bool):
    """A tqdm bar, or None (tqdm is imported only to show one: gradchain does not need it)."""
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("lr_finder(progress=True) shows a tqdm progress bar: pip install tqdm, "
                          "or pass progress=False") from error
    return tqdm(total=total, desc="lr range test", leave=False)


def _suggestion(rates: np.ndarray, smoothed: np.ndarray, how: str) -> float:
    finite = np.where(np.isfinite(smoothed), smoothed, np.inf)
    lowest = int(np.argmin(finite))
    if how == "minimum":
        return float(rates[lowest] / 10)
    # The steepest fall before the minimum; the first tenth of the curve is skipped, where
    # the smoothed loss still mostly reflects which batches came first.
    start = min(len(rates) // 10, max(lowest - 2, 0))
    if lowest - start < 2:
        return float(rates[lowest] / 10)
    slope = np.gradient(finite[start:lowest + 1], np.log(rates[start:lowest + 1]))
    return float(rates[start + int(np.argmin(slope))])
