"""Non-finite steps: skip an update whose gradients hold a NaN or an Inf.

A skipped call returns zero updates and leaves the inner state exactly as it was (its step
counts, moments and schedules do not advance), so a run that meets non-finite gradients at some
steps ends where a run that never saw those steps ends. Optionally, after ``n`` non-finite
gradients in a row the wrapper gives up and lets the next one through (a persistent NaN is then
visible in the params instead of silently stalling training).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradchain.core.hyperparams import COUNT_DTYPE, Hyperparams, next_count
from gradchain.core.reductions import check_axis_name, shown_with_axis_name, sum_over_devices
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_range, check_transformations
from gradchain.wrappers.conditional import update_if


class ApplyIfFiniteState(NamedTuple):
    """``notfinite_count``: non-finite gradients skipped in a row (0 after a finite one and
    after giving up); ``last_finite``: whether the latest gradients were finite;
    ``total_notfinite``: non-finite gradients seen since ``init`` (never reset)."""

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: Any
    hyperparams: dict


def _all_finite(tree, axis_name) -> jax.Array:
    """Whether no leaf holds a NaN or an Inf: the number of leaves (leaf parts, on every device
    of ``axis_name``) that do is 0."""
    flagged = [jnp.any(~jnp.isfinite(x)).astype(COUNT_DTYPE) for x in jax.tree.leaves(tree)]
    return jnp.asarray(sum_over_devices(flagged, axis_name)) == 0


@public
def skip_non_finite(inner, *, give_up_after: Optional[int] = None,
                    axis_name=None) -> GradientTransformation:
    """Run ``inner`` on finite gradients only; return zeros and keep its state otherwise.

    With ``c`` the number of non-finite gradients in a row (this one included): the update is
    applied when the gradients are finite or ``c > give_up_after``; when it is applied after
    non-finite gradients (giving up), ``c`` restarts at 0, so the next ``give_up_after``
    non-finite gradients are skipped again. Optax's ``apply_if_finite`` keeps counting instead,
    and so lets every later non-finite gradient through until a finite one comes.

    Args:
      inner: the transformation to protect.
      give_up_after: skip at most this many non-finite gradients in a row (an integer
        ``>= 0``); None (default) never gives up. Kept in the state's ``hyperparams`` as
        ``max_consecutive_errors`` (infinity for None), so it can be changed at run time.
      axis_name: the ``shard_map``/``pmap`` axis the updates are split over, so that every
        device makes the same decision (the number of leaves holding a NaN or an infinity is
        ``psum``-ed over it); None (default): not split.

    Counters (``ApplyIfFiniteState``): ``notfinite_count`` (consecutive skips),
    ``total_notfinite`` (all non-finite gradients seen; the total of skips when the wrapper
    never gives up), ``last_finite``.

    Returns:
      A ``GradientTransformation`` whose state is an ``ApplyIfFiniteState``:
      ``notfinite_count``, ``last_finite``, ``total_notfinite``, ``inner_state`` and
      ``hyperparams`` (``max_consecutive_errors``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.skip_non_finite(gc.sgd(1.0))
      >>> params = {"w": jnp.array([1.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([jnp.nan])}, state, params)
      >>> updates["w"].tolist(), int(state.notfinite_count)
      ([0.0], 1)
    """
    if callable(give_up_after):
        raise TypeError("skip_non_finite: give_up_after must be an integer or None, not a "
                        "schedule")
    if give_up_after is not None:
        check_range("skip_non_finite", "give_up_after", give_up_after, 0)
    return _apply_if_finite("skip_non_finite", inner,
                            math.inf if give_up_after is None else give_up_after,
                            {"give_up_after": give_up_after}, axis_name)


def _apply_if_finite(owner: str, inner, limit, display: dict,
                     axis_name) -> GradientTransformation:
    check_transformations(owner, {"inner": inner})
    check_axis_name(owner, axis_name)
    hyper = Hyperparams(max_consecutive_errors=limit)

    def init(params):
        zero = jnp.zeros([], COUNT_DTYPE)
        return ApplyIfFiniteState(zero, jnp.asarray(True), zero, inner.init(params),
                                  hyper.init())

    def update(updates, state, params=None, **extra):
        limits, stored = hyper.read(state.hyperparams, None)
        finite = _all_finite(updates, axis_name)
        streak = jnp.where(finite, jnp.zeros_like(state.notfinite_count),
                           next_count(state.notfinite_count))
        give_up = jnp.logical_and(~finite, streak > limits["max_consecutive_errors"])

        new_updates, inner_state = update_if(
            jnp.logical_or(finite, give_up),
            lambda: call_update(inner, updates, state.inner_state, params, extra),
            state.inner_state)
        return new_updates, ApplyIfFiniteState(
            jnp.where(give_up, jnp.zeros_like(streak), streak), finite,
            jnp.where(finite, state.total_notfinite, next_count(state.total_notfinite)),
            inner_state, stored)

    return GradientTransformation(init, update, name=owner,
                                  hyperparams=shown_with_axis_name(display, axis_name),
                                  children=[inner], parts=[(("inner_state",), inner)],
                                  state_type=ApplyIfFiniteState)


@public
def apply_if_finite(inner, max_consecutive_errors: int, *,
                    axis_name=None) -> GradientTransformation:
    """Optax's ``apply_if_finite``: the same arguments, state fields and numbers, except that the
    consecutive counter restarts after giving up (see ``skip_non_finite``; Optax's counter keeps
    growing, a behaviour its pull request #1746 proposes to fix). ``axis_name`` (not in Optax):
    as ``skip_non_finite``'s.

    Args:
      inner: the transformation to protect.
      max_consecutive_errors: non-finite gradients skipped in a row at most (an integer
        ``>= 0``).
      axis_name: the ``shard_map``/``pmap`` axis the updates are split over, or None.

    Returns:
      A ``GradientTransformation`` whose state is an ``ApplyIfFiniteState`` (see
      ``skip_non_finite``).
    """
    check_range("apply_if_finite", "max_consecutive_errors", max_consecutive_errors, 0)
    return _apply_if_finite("apply_if_finite", inner, max_consecutive_errors,
                            {"max_consecutive_errors": max_consecutive_errors}, axis_name)
