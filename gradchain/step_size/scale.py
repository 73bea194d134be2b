"""Step sizes: a constant factor, and the (negative) learning rate.

Every step size here is a number, an array, a tracer or a schedule ``step -> value`` (see
``gradchain.core.hyperparams`` for where the value lives and how it changes at run time).
These stages make the final update, so they return it in the params' dtype when params are
given (bfloat16 params with float32 gradients get bfloat16 updates; the product itself is
computed in at least float32), and in the incoming dtype without params.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, scale_name, state_names
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


class ScaleState(NamedTuple):
    count: jax.Array
    hyperparams: dict


@public
def scale(step_size, *, hyperparam_name=None) -> GradientTransformation:
    """``u -> step_size · u``. Any sign (finite); a number, array or schedule.

    Args:
      step_size: the factor (any finite sign); a number, array or schedule.
      hyperparam_name: its key in the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleState``: ``count`` (None unless ``step_size`` is a schedule) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    names = state_names("scale", hyperparam_name, ("step_size",))
    check_range("scale", names["step_size"], step_size)
    return elementwise_transformation(
        "scale", ScaleState,
        lambda g, s, p, step_size: (g * step_size, None),
        Hyperparams(names, step_size=step_size), output="params")


@public
def scale_by_learning_rate(learning_rate: ScalarOrSchedule, *, flip_sign: bool = True,
                           hyperparam_name=None) -> GradientTransformation:
    """``u -> -γ_t · u`` (``+γ_t · u`` with ``flip_sign=False``): the last stage of a descent step.

    ``learning_rate`` γ is ``>= 0``: a number, an array, or a schedule evaluated at this
    stage's own step count (0 at the first update).

    A scheduled rate gets a run-time multiplier: ``γ_t = s · schedule(t)``, with ``s`` kept in
    the state as ``<name>_scale`` (``learning_rate_scale``, 1 at first; ``<name>`` is the
    rate's key, ``hyperparam_name``), so ``set_hyperparams(tx, state, learning_rate_scale=0.5)``
    halves the rest of the schedule without recompiling (a constant rate is changed by setting
    ``learning_rate`` itself).

    Args:
      learning_rate: γ ``>= 0``; a number, array or schedule.
      flip_sign: multiply by ``-γ`` (a descent step) rather than ``γ``.
      hyperparam_name: its key in the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleState``: ``count`` (None unless the rate is a schedule) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``), with ``learning_rate_scale`` beside a schedule.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.scale_by_learning_rate(0.1)
      >>> params = {"w": jnp.array([0.0])}
      >>> updates, _ = tx.update({"w": jnp.array([2.0])}, tx.init(params), params)
      >>> updates["w"].tolist()
      [-0.2]
    """
    names = state_names("scale_by_learning_rate", hyperparam_name, ("learning_rate",))
    key = names["learning_rate"]
    check_range("scale_by_learning_rate", key, learning_rate, 0)
    sign = -1 if flip_sign else 1
    multiplier = scale_name(key)
    check_range("scale_by_learning_rate", multiplier, 1.0, 0)
    names["multiplier"] = multiplier
    hyper = (Hyperparams(names, learning_rate=learning_rate, multiplier=1.0)
             if callable(learning_rate) else Hyperparams(names, learning_rate=learning_rate))

    def prepare(count, learning_rate, multiplier=None):
        rate = learning_rate if multiplier is None else learning_rate * multiplier
        return {"factor": sign * rate}

    return elementwise_transformation(
        "scale_by_learning_rate", ScaleState,
        lambda g, s, p, factor: (g * factor, None),
        hyper, prepare=prepare, output="params",
        display={key: learning_rate, "flip_sign": flip_sign})
