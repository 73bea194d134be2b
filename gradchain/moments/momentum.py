"""Heavy-ball momentum, with Nesterov and PyTorch's dampening as options."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, state_names
from gradchain.core.public import called_name, public
from gradchain.core.validation import check_range, concrete_nonzero
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


class MomentumState(NamedTuple):
    count: jax.Array
    buffer: object
    hyperparams: dict


@public
def scale_by_momentum(momentum: ScalarOrSchedule = 0.9, *, dampening: ScalarOrSchedule = 0.0,
                      nesterov: bool = False, accumulator_dtype=None,
                      hyperparam_name=None) -> GradientTransformation:
    """Momentum buffer ``b`` as in ``torch.optim.SGD`` (Polyak 1964; Sutskever et al. 2013).

    ``b_1 = g_1``; ``b_t = μ · b_{t-1} + (1 - τ) · g_t`` for ``t > 1`` (τ = dampening, never
    applied at the first step). Outputs ``g_t + μ · b_t`` with ``nesterov=True``, else ``b_t``.
    With ``τ = 0`` this is Optax's ``trace``. The learning rate is applied outside the buffer;
    put ``scale_by_learning_rate`` before this instead (as Optax's ``rmsprop`` does) for the
    notes' form ``v = μv + γg``, which differs only when the learning rate changes.

    Args:
      momentum: μ in ``[0, 1]``; a number, array or schedule.
      dampening: τ in ``[0, 1]``; PyTorch's convention. Must be 0 with Nesterov (as in torch).
      nesterov: use the Nesterov look-ahead form.
      accumulator_dtype: dtype of ``b`` (default: the params' dtype).
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (SWATS stores
        ``momentum`` as ``b1``, tied to its Adam phase's β1; ``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``MomentumState``: ``count``, ``buffer`` (``b``, params-shaped) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.scale_by_momentum(0.5)
      >>> params = {"w": jnp.array([0.0])}
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update({"w": jnp.array([1.0])}, state, params)
      >>> updates["w"].tolist()  # 1, then 1.5, then 1.75
      [1.75]
    """
    names = state_names("scale_by_momentum", hyperparam_name, ("momentum", "dampening"))
    check_range("scale_by_momentum", names["momentum"], momentum, 0, 1)
    check_range("scale_by_momentum", names["dampening"], dampening, 0, 1)
    if nesterov and concrete_nonzero(dampening):
        owner = called_name("scale_by_momentum")
        raise ValueError(f"{owner}: nesterov=True needs dampening=0, got "
                         f"dampening={dampening!r} (as in torch.optim.SGD)")

    def leaf(g, b, p, first, momentum, weight):
        new_b = jnp.where(first, g, momentum * b + weight * g)
        return (g + momentum * new_b if nesterov else new_b), new_b

    return elementwise_transformation(
        "scale_by_momentum", MomentumState, leaf,
        Hyperparams(names, momentum=momentum, dampening=dampening),
        stat_init=lambda p, dt: jnp.zeros(jnp.shape(p), dt), dtype=accumulator_dtype,
        prepare=lambda count, momentum, dampening: {"first": count == 0, "momentum": momentum,
                                                    "weight": 1 - dampening},
        uses_count=True,
        display={names["momentum"]: momentum, names["dampening"]: dampening,
                 "nesterov": nesterov})
