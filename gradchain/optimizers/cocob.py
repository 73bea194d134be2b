"""COCOB-Backprop: learning-rate-free training by coin betting."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.cocob import scale_by_cocob
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def cocob(learning_rate: ScalarOrSchedule = 1.0, alpha: ScalarOrSchedule = 100.0,
          eps: ScalarOrSchedule = 1e-8, weight_decay: ScalarOrSchedule = 0.0,
          mask=None) -> GradientTransformation:
    """COCOB-Backprop (Orabona & Tommasi 2017): each parameter bets a fraction of its wealth.

    ``chain(add_decayed_weights(λ, mask), scale_by_learning_rate(γ, flip_sign=False),
    scale_by_cocob(α, ε))``: the gradient (plus L2 decay) scaled by γ is what the bettor sees;
    ``scale_by_cocob`` gives the whole update. Optax's ``contrib.cocob``: same arguments,
    defaults and numbers.

    Args:
      learning_rate: γ ``>= 0`` multiplying the gradient (1: none), a number, array or schedule.
      alpha: α ``> 0``, the fraction bet.
      eps: ε ``> 0``, the starting scale of the gradients.
      weight_decay: λ ``>= 0`` (L2, added to the gradient first).
      mask: which leaves decay (as ``add_decayed_weights``).

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (the decay's, the scaling's ``ScaleState``, then ``CocobState`` with five statistics per
      param; ``describe_state`` lists them, ``get_hyperparams`` reads the hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.cocob()
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.9849, -2.0]
    """
    return chain(maybe_add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate, flip_sign=False),
                 scale_by_cocob(alpha, eps))
