"""Exponential moving average: the first and second moments of Adam, RMSProp and Adadelta."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import real_dtype
from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, cast, compute_dtype, next_count, state_names
from gradchain.core.public import public
from gradchain.core.validation import check_not_schedule, check_range
from gradchain.core.transformation import GradientTransformation


class EmaState(NamedTuple):
    count: jax.Array
    ema: object
    hyperparams: dict


@public
def ema(decay, *, debias: bool = False, initial_value=0.0, dtype=None, hyperparam_name=None,
        real: bool = False) -> GradientTransformation:
    """Exponential moving average of the incoming updates.

    ``m_t = decay · m_{t-1} + (1 - decay) · x_t``, ``m_0 = initial_value``; outputs ``m_t`` (in
    the statistic's dtype), or with ``debias=True`` the bias-corrected ``m_t / (1 - decay^t)``
    (``t`` from 1, saturating like the step count: Adam's m̂ and v̂). The state keeps the raw
    ``m_t`` either way, and one ``decay`` serves the average and its correction, so the two
    cannot be given different values. With ``square()`` in front it is the second moment.
    Where another stage must sit between the average and its correction (torch's AMSGrad:
    ``max_v()`` of the raw ``v``), use ``debias=False`` and ``bias_correction(decay)`` with
    the same ``hyperparam_name``.

    Args:
      decay: in ``[0, 1]`` (``[0, 1)`` with ``debias``); a number, array or schedule.
      debias: output the bias-corrected average.
      initial_value: ``m_0`` (Optax's ``initial_scale`` for RMSProp).
      dtype: dtype of ``m`` (default: the params' dtype).
      hyperparam_name: key of ``decay`` in the state's ``hyperparams`` (``"b1"`` in Adam): two
        primitives given the same name are read and set together (``state_names``).
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
    names = state_names("ema", hyperparam_name, ("decay",))
    check_range("ema", names["decay"], decay, 0, 1, high_open=debias)
    check_not_schedule("ema", "initial_value", initial_value)

    def prepare(count, decay):
        scalars = {"decay": decay, "weight": 1 - decay}
        if debias:
            scalars["correction"] = 1 - decay ** next_count(count)
        return scalars

    shown = {names["decay"]: decay, **({"debias": True} if debias else {})}
    return elementwise_transformation(
        "ema", EmaState,
        _debiased_step if debias else _ema_step, Hyperparams(names, decay=decay),
        stat_init=lambda p, dt: jnp.full(jnp.shape(p), initial_value, dt),
        dtype=dtype, output="stat", real_statistic=real,
        real_input=("with real=True it keeps a real statistic: feed it square()'s |g|², or "
                    "leave real=False for a complex one") if real else None,
        prepare=prepare, uses_count=debias, display=shown)


def _ema_step(g, m, p, decay, weight):
    new = weight * g + decay * m
    return new, new


def _debiased_step(g, m, p, decay, weight, correction):
    # The average is rounded to its own dtype and corrected in that dtype's compute precision,
    # as ``chain(ema(decay), bias_correction(decay))`` does: the same numbers, bit for bit.
    new = weight * g + decay * m
    return cast(new, m.dtype) / cast(correction, real_dtype(compute_dtype(m.dtype))), new
