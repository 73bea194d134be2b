"""ADOPT's preconditioner: the gradient divided by the root of the *previous* second moment."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.combinators.chain import chain
from gradchain.core.dtypes import abs_sq
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import elementwise
from gradchain.moments.nesterov_ema import nesterov_ema
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


class PreviousRmsState(NamedTuple):
    count: jax.Array
    nu: object
    hyperparams: dict


def _clip_at_fourth_root(count):
    return count ** 0.25


@public
def scale_by_previous_rms(b2: ScalarOrSchedule = 0.9999, eps: ScalarOrSchedule = 1e-6, *,
                          clip_value_fn=_clip_at_fourth_root,
                          use_clipping: bool = True) -> GradientTransformation:
    """``x_t = clip(u_t / max(√v_{t-1}, ε), ±c_t)``, then ``v_t = β2 v_{t-1} + (1 - β2) |u_t|²``.

    The update is normalised by the second moment of the steps *before* it, so ``u_t`` and its
    scale are independent (Taniguchi et al. 2024, ADOPT). At the first step ``v_1 = |u_1|²`` and
    the output is 0 (there is no earlier moment). ``c_t = clip_value_fn(t - 1)`` (``t`` from 1;
    default ``(t - 1)^{1/4}``, Optax's), computed from the step count at each update;
    ``use_clipping=False`` leaves it out.

    Args:
      b2: β2 in ``[0, 1]``; a number, array or schedule.
      eps: ε ``>= 0``, the floor of the root.
      clip_value_fn: ``count -> c`` (count 0 at the first update).
      use_clipping: clip the normalised update to ``[-c_t, c_t]``.

    Returns:
      A ``GradientTransformation``; its state is ``PreviousRmsState(count, nu, hyperparams)``.
    """
    check_range("scale_by_previous_rms", "b2", b2, 0, 1)
    check_range("scale_by_previous_rms", "eps", eps, 0)
    def scalars(b2, eps, step):
        clip = {"clip_value": clip_value_fn(step - 1)} if use_clipping else {}
        return {"b2": b2, "eps": eps, **clip}

    def rule(u, stat, step, b2, eps, clip_value=None):
        square = abs_sq(u)
        x = u / jnp.maximum(jnp.sqrt(stat), eps)
        if clip_value is not None:
            x = jnp.clip(x, -clip_value, clip_value)
        first = step == 1
        return (jnp.where(first, jnp.zeros_like(x), x),
                jnp.where(first, square, (1 - b2) * square + b2 * stat))

    return elementwise(
        rule, name="scale_by_previous_rms", hyperparams={"b2": b2, "eps": eps}, statistic=0.0,
        scalars=scalars, real_statistic=True, state_type=PreviousRmsState,
        real_input="clipping has no complex form" if use_clipping else None)


@public
def scale_by_adopt(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.9999,
                   eps: ScalarOrSchedule = 1e-6, mu_dtype=None, *, nesterov: bool = False,
                   use_clipping: bool = True,
                   clip_value_fn=_clip_at_fourth_root) -> GradientTransformation:
    """ADOPT (Taniguchi et al. 2024): momentum of the update normalised by the previous second
    moment.

    ``x_t = clip(g_t / max(√v_{t-1}, ε), ±c_t)``, ``m_t = β1 m_{t-1} + (1 - β1) x_t``; out
    ``m_t`` (``β1 m_t + (1 - β1) x_t`` with ``nesterov``), 0 at the first step:
    ``chain(scale_by_previous_rms(β2, ε), nesterov_ema(β1))``. Optax's ``scale_by_adopt``
    (arguments, defaults and numbers).

    Args:
      b1: β1 in ``[0, 1]``.
      b2: β2 in ``[0, 1]``.
      eps: ε ``>= 0``.
      mu_dtype: dtype of ``m`` (default: the params').
      nesterov: Nesterov's look-ahead on ``m``.
      use_clipping: clip the normalised gradient (recommended from scratch).
      clip_value_fn: ``count -> c_t`` (default ``count^{1/4}``).

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts'
      states).
    """
    return chain(
        scale_by_previous_rms(b2, eps, clip_value_fn=clip_value_fn, use_clipping=use_clipping),
        nesterov_ema(b1, nesterov=nesterov, dtype=mu_dtype, hyperparam_name="b1"))
