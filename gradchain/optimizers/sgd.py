"""Stochastic gradient descent, with momentum, Nesterov and L2 weight decay."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import called_name, public
from gradchain.core.transformation import identity
from gradchain.core.validation import concrete_nonzero
from gradchain.moments.momentum import scale_by_momentum
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def sgd(learning_rate: ScalarOrSchedule, momentum=None, nesterov: bool = False,
        accumulator_dtype=None, *, dampening: ScalarOrSchedule = 0.0,
        weight_decay: ScalarOrSchedule = 0.0) -> GradientTransformation:
    """SGD: ``θ -= γ · b_t`` with ``b`` the momentum buffer of ``scale_by_momentum``.

    ``chain(add_decayed_weights(λ), scale_by_momentum(μ, dampening, nesterov),
    scale_by_learning_rate(γ))``: exactly ``torch.optim.SGD`` (L2 decay first, lr outside the
    buffer) and, with defaults, Optax's ``sgd``. ``momentum=None`` builds no buffer, and then
    refuses ``nesterov=True`` or a non-zero ``dampening`` (which would have no effect).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      momentum: μ in ``[0, 1]``, or None for no buffer.
      nesterov: Nesterov momentum (needs ``momentum``).
      accumulator_dtype: dtype of the momentum buffer (default: the params').
      dampening: τ in ``[0, 1]``, torch's dampening (needs ``momentum``).
      weight_decay: λ ``>= 0`` of L2 regularisation (``λθ`` added to the gradient first).

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.sgd(learning_rate=0.1, momentum=0.9)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.95, -1.95]
    """
    check_momentum_options(momentum, nesterov, dampening)
    return chain(
        maybe_add_decayed_weights(weight_decay),
        identity() if momentum is None else scale_by_momentum(
            momentum, dampening=dampening, nesterov=nesterov,
            accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(learning_rate))


def check_momentum_options(momentum, nesterov: bool, dampening) -> None:
    """With ``momentum=None`` (no buffer), refuse ``nesterov=True`` and a non-zero
    ``dampening``: they would have no effect."""
    if momentum is None:
        if nesterov:
            raise ValueError(f"{called_name('sgd')}: nesterov=True needs a momentum, got "
                             "momentum=None")
        if concrete_nonzero(dampening):
            raise ValueError(f"{called_name('sgd')}: dampening={dampening!r} needs a momentum, "
                             "got momentum=None")
