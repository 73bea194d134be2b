"""Reduce the step size when a metric stops improving: PyTorch's ``ReduceLROnPlateau`` as a
gradient transformation that runs entirely inside ``jit``.

The loss arrives as the keyword extra ``value``: ``tx.update(grads, state, params, value=loss)``
(``chain`` passes it to every part that accepts keyword extras). The transformation multiplies
the updates by its current ``scale`` (1 at first); put it at the end of a chain, after
``scale_by_learning_rate``, and the learning rate in force is ``γ · scale``.

Each reading of the metric (the mean of ``value`` over ``accumulation_size`` updates, e.g. one
epoch's steps; every update by default) goes through PyTorch's rules:

1. it is *better* if ``a < best - |best|·threshold`` (``mode="min"``, ``threshold_mode="rel"``),
   ``a < best - threshold`` (``"abs"``), and mirrored for ``mode="max"``; a better reading
   becomes ``best`` and clears the count of bad readings, any other one adds to it;
2. during a cooldown (``cooldown`` readings after a reduction) the count is forced to 0;
3. when the count exceeds ``patience``: ``scale ← max(scale · factor, min_scale)``, applied only
   if it lowers ``scale`` by more than ``eps``; the cooldown restarts and the count clears.

A reduction decided on a reading applies to the same update: ``value`` is the loss at the
params before it, which is what PyTorch has measured when ``scheduler.step(metric)`` lowers the
rate for the next epoch.

One departure from PyTorch (and Optax), deliberately: with ``threshold_mode="rel"`` PyTorch
compares with ``best · (1 - threshold)``, which for a negative ``best`` lies *above* ``best``, so a
slightly worse reading counts as an improvement and the rate is never reduced on a plateau of
negative values (a log-likelihood, a negative reward). Here the margin is ``|best|·threshold``;
for ``best >= 0`` the two agree exactly.

``min_scale`` and ``eps`` are in units of the scale: PyTorch's ``min_lr`` and ``eps`` divided by
the base learning rate.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradchain.core.hyperparams import COUNT_DTYPE, state_names
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_choice, check_range, check_steps
from gradchain.kit.rules import elementwise


class ReduceOnPlateauState(NamedTuple):
    """``best``: the best reading so far (±inf before the first); ``num_bad``: bad readings in
    a row; ``cooldown_counter``: readings of cooldown left; ``scale``: the multiplier in force;
    ``accumulated``/``accumulation_count``: the sum and number of values in the current
    reading."""

    count: Optional[jax.Array]
    best: jax.Array
    num_bad: jax.Array
    cooldown_counter: jax.Array
    scale: jax.Array
    accumulated: jax.Array
    accumulation_count: jax.Array
    hyperparams: dict


@public
def reduce_on_plateau(factor=0.1, patience=10, threshold=1e-4, threshold_mode: str = "rel",
                      cooldown=0, min_scale=0.0, eps=1e-8, *, mode: str = "min",
                      accumulation_size: int = 1, hyperparam_name=None
                      ) -> GradientTransformation:
    """Multiply the updates by a scale that drops by ``factor`` when the metric plateaus.

    See the module docstring for the rules. Defaults are PyTorch's ``ReduceLROnPlateau``.

    Args:
      factor: in ``[0, 1)``; the scale is multiplied by it at each reduction.
      patience: bad readings tolerated before a reduction (``>= 0``).
      threshold: ``>= 0``; how much better a reading must be to count as an improvement.
      threshold_mode: ``"rel"`` (relative to ``|best|``) or ``"abs"``.
      cooldown: readings after a reduction during which bad readings are not counted.
      min_scale: lower bound of the scale (``min_lr / lr``).
      eps: a reduction smaller than this is skipped (``eps / lr``).
      mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
      accumulation_size: updates averaged into one reading (1: every update is a reading).
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose update needs ``value=`` (the loss) and whose state is a
      ``ReduceOnPlateauState``: ``best`` (the best reading so far), ``num_bad`` (bad readings in
      a row), ``cooldown_counter``, ``scale`` (the multiplier in force, 1 at first),
      ``accumulated``/``accumulation_count`` (the reading being averaged), the step ``count``
      and ``hyperparams``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.reduce_on_plateau(factor=0.5, patience=1)
      >>> params = {"w": jnp.array([1.0])}
      >>> state = tx.init(params)
      >>> for loss in [1.0, 2.0, 2.0, 2.0]:
      ...     updates, state = tx.update({"w": jnp.array([1.0])}, state, params, value=loss)
      >>> float(state.scale), updates["w"].tolist()
      (0.5, [0.5])
    """
    owner = "reduce_on_plateau"
    names = state_names(owner, hyperparam_name,
                        ("factor", "patience", "threshold", "cooldown", "min_scale", "eps"))
    check_range(owner, names["factor"], factor, 0, 1, high_open=True)
    check_range(owner, names["patience"], patience, 0)
    check_range(owner, names["threshold"], threshold, 0)
    check_range(owner, names["cooldown"], cooldown, 0)
    check_range(owner, names["min_scale"], min_scale, 0)
    check_range(owner, names["eps"], eps, 0)
    check_choice(owner, "threshold_mode", threshold_mode, ("rel", "abs"))
    check_choice(owner, "mode", mode, ("min", "max"))
    accumulation_size = check_steps(owner, "accumulation_size", accumulation_size)
    sign = 1.0 if mode == "min" else -1.0
    dtype = jnp.result_type(float)
    zero = jnp.zeros([], COUNT_DTYPE)

    def is_better(reading, best, threshold):
        # In "min" terms (a "max" metric is negated): better if reading < best - margin.
        if threshold_mode == "abs":
            return reading < best - threshold
        # best ∓ |best|·threshold written as a product, which keeps best = ±inf finite-safe.
        return reading < best * jnp.where(best >= 0, 1 - threshold, 1 + threshold)

    def read_metric(value, best, num_bad, cooldown_counter, scale, accumulated,
                    accumulation_count, factor, patience, threshold, cooldown, min_scale, eps):
        if jnp.ndim(value) != 0:
            raise ValueError(f"{owner}: value must be a scalar, got shape {jnp.shape(value)}")
        dtype = best.dtype
        accumulated = accumulated + jnp.asarray(value, dtype)
        accumulation_count = accumulation_count + 1
        reading = sign * accumulated / accumulation_count
        full = accumulation_count >= accumulation_size

        better = is_better(reading, sign * best, threshold.astype(dtype))
        new_best = jnp.where(better, sign * reading, best)
        new_bad = jnp.where(better, 0, num_bad + 1)
        in_cooldown = cooldown_counter > 0
        new_cooldown = jnp.where(in_cooldown, cooldown_counter - 1, cooldown_counter)
        new_bad = jnp.where(in_cooldown, 0, new_bad)
        reduce = new_bad > patience
        lowered = jnp.maximum(scale * factor.astype(dtype), min_scale.astype(dtype))
        new_scale = jnp.where(reduce & (scale - lowered > eps), lowered, scale)
        new_cooldown = jnp.where(reduce, cooldown.astype(COUNT_DTYPE), new_cooldown)
        new_bad = jnp.where(reduce, 0, new_bad)

        def settle(new, old):
            return jnp.where(full, new, old).astype(old.dtype)

        return {"best": settle(new_best, best), "num_bad": settle(new_bad, num_bad),
                "cooldown_counter": settle(new_cooldown, cooldown_counter),
                "scale": settle(new_scale, scale),
                "accumulated": jnp.where(full, 0, accumulated),
                "accumulation_count": jnp.where(full, 0, accumulation_count)}

    hyperparams = {"factor": factor, "patience": patience, "threshold": threshold,
                   "cooldown": cooldown, "min_scale": min_scale, "eps": eps}
    shown = {**{names[k]: v for k, v in hyperparams.items()}, "mode": mode, "threshold_mode": threshold_mode,
             "accumulation_size": accumulation_size}
    return elementwise(
        lambda u, scale: u * scale, name=owner, hyperparams=hyperparams, scalars=read_metric,
        carry={"best": jnp.asarray(sign * jnp.inf, dtype), "num_bad": zero,
               "cooldown_counter": zero, "scale": jnp.ones([], dtype),
               "accumulated": jnp.zeros([], dtype), "accumulation_count": zero},
        extra_args=("value",), state_type=ReduceOnPlateauState, display=shown,
        hyperparam_name=names)
