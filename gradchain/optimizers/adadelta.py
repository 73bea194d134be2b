"""Adadelta."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.adadelta import scale_by_adadelta
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def adadelta(learning_rate: ScalarOrSchedule = 1.0, rho: ScalarOrSchedule = 0.9,
             eps: ScalarOrSchedule = 1e-6, weight_decay: ScalarOrSchedule = 0.0,
             weight_decay_mask=None, *, accumulator_dtype=None) -> GradientTransformation:
    """Adadelta (Zeiler 2012): ``θ -= γ · √(u + ε)/√(v + ε) · g``.

    Same numbers as ``torch.optim.Adadelta`` (lr 1.0, ρ 0.9, ε 1e-6, L2 weight decay) and
    Optax's ``adadelta`` given a learning rate. Optax's default ``learning_rate=None`` skips the
    learning-rate stage and so steps *up* the gradient; here the default is torch's 1.0, a
    descent step. The paper uses ρ = 0.95. ``weight_decay_mask`` (Optax's) selects the leaves
    that decay.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      rho: ρ in ``[0, 1]``, the decay of both averages.
      eps: ε ``> 0``.
      weight_decay: λ ``>= 0`` of L2 regularisation.
      weight_decay_mask: which leaves decay (as ``adamw``'s ``mask``); None: all.
      accumulator_dtype: dtype of both averages (default: the params').

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.adadelta(learning_rate=1.0, rho=0.0, eps=1.0)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.75, -0.75])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.4, -1.4]
    """
    return chain(
        maybe_add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps, accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(learning_rate))
