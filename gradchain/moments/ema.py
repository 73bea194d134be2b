"""Exponential moving average: the first and second moments of Adam, RMSProp and Adadelta."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams
from gradchain.core.public import public
from gradchain.core.validation import check_not_schedule, check_range


class EmaState(NamedTuple):
    count: jax.Array
    ema: object
    hyperparams: dict


@public
def ema(decay, *, initial_value=0.0, dtype=None, hyperparam_name: str = "decay",
        real: bool = False):
    """Exponential moving average of the incoming updates.

    ``m_t = decay · m_{t-1} + (1 - decay) · x_t``, ``m_0 = initial_value``; outputs ``m_t`` (in
    the statistic's dtype). Not bias-corrected: follow it with ``bias_correction(decay)``.
    With ``square()`` in front it is the second moment ``v_t``.

    Args:
      decay: in ``[0, 1]``; a number, array or schedule.
      initial_value: ``m_0`` (Optax's ``initial_scale`` for RMSProp).
      dtype: dtype of ``m`` (default: the params' dtype).
      hyperparam_name: key of ``decay`` in the state's ``hyperparams`` (``"b1"`` in Adam): two
        primitives given the same name are read and set together.
      real: the input is real (``square()``'s ``|g|²``: a second moment), so ``m`` is kept in
        the params' real dtype: float32 for complex64 params, half the memory of a complex
        ``m`` (without it, ``m`` of complex params is complex, with a zero imaginary part
        here: the same numbers, as Optax keeps them). Complex updates are then refused. No
        effect on real params.

    Returns:
      A ``GradientTransformation`` whose state is ``EmaState``: ``count``, ``ema`` (``m``, params-shaped) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.ema(0.5)
      >>> params = {"w": jnp.array([0.0])}
      >>> state = tx.init(params)
      >>> for g in (2.0, 4.0):
      ...     updates, state = tx.update({"w": jnp.array([g])}, state, params)
      >>> updates["w"].tolist()  # 0.5 · (0.5 · 0 + 0.5 · 2) + 0.5 · 4
      [2.5]
    """
    check_range("ema", hyperparam_name, decay, 0, 1)
    check_not_schedule("ema", "initial_value", initial_value)
    return elementwise_transformation(
        "ema", EmaState,
        _ema_step, Hyperparams(**{hyperparam_name: decay}),
        stat_init=lambda p, dt: jnp.full(jnp.shape(p), initial_value, dt),
        dtype=dtype, output="stat", real_statistic=real,
        real_input=("with real=True it keeps a real statistic: feed it square()'s |g|², or "
                    "leave real=False for a complex one") if real else None,
        prepare=lambda count, **hp: {"decay": hp[hyperparam_name],
                                     "weight": 1 - hp[hyperparam_name]})


def _ema_step(g, m, p, decay, weight):
    new = weight * g + decay * m
    return new, new
