"""Adagrad."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.rss import scale_by_rss
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value=0.1,
            eps: ScalarOrSchedule = 1e-7, *, eps_in_sqrt: bool = True,
            weight_decay: ScalarOrSchedule = 0.0, accumulator_dtype=None) -> GradientTransformation:
    """Adagrad (Duchi et al. 2011): ``s += g²; θ -= γ · g / √(s + ε)``.

    Defaults are Optax's (``s_0 = 0.1``, ε inside the root). ``torch.optim.Adagrad`` is
    ``adagrad(lr, initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False)``, with its
    ``lr_decay`` as the schedule ``lambda t: lr / (1 + t · lr_decay)`` and ``weight_decay`` as L2.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      initial_accumulator_value: ``s_0 >= 0`` (0.1 Optax, 0 torch).
      eps: ε ``>= 0``.
      eps_in_sqrt: ε inside the root (Optax) or added to ``√s`` (torch).
      weight_decay: λ ``>= 0`` of L2 regularisation.
      accumulator_dtype: dtype of the sum ``s`` (default: the params').

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.adagrad(learning_rate=0.1, initial_accumulator_value=0.0, eps=0.0)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.9, -1.9]
    """
    return chain(
        maybe_add_decayed_weights(weight_decay),
        scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=eps_in_sqrt,
                     accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(learning_rate))
