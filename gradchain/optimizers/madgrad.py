"""MADGRAD: momentumized, adaptive, dual averaged gradient."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.madgrad import scale_by_madgrad
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def madgrad(learning_rate: ScalarOrSchedule, momentum: ScalarOrSchedule = 0.9,
            weight_decay: ScalarOrSchedule = 0.0,
            eps: ScalarOrSchedule = 1e-6) -> GradientTransformation:
    """MADGRAD (Defazio & Jelassi 2022): ``x_{t+1} = (1 - c) z_t + c x_t``,
    ``z_t = x_0 - Σ λ_k g_k / (∛(Σ λ_k g_k²) + ε)``, ``λ_k = (γ_k + ε) √k``.

    ``chain(add_decayed_weights(λ), scale_by_madgrad(γ, c, ε))``: the decay is L2 (added to the
    gradient), as in the authors' code. Arguments, defaults and numbers are Optax's
    ``contrib.madgrad``. The state holds three copies of the params' size (the two sums and
    the starting point), as Optax's.

    Args:
      learning_rate: γ ``>= 0``; a number, array or schedule.
      momentum: c in ``[0, 1]``.
      weight_decay: λ ``>= 0``.
      eps: ε ``>= 0``.

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts' states;
      ``describe_state`` lists them, ``get_hyperparams``/``set_hyperparams`` read and set the
      hyperparameters by the argument names).

    Example (two steps on a 2×2 matrix):
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([[1.0, -2.0], [0.5, 1.5]])}
      >>> tx = gc.madgrad(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[0.5, -0.5], [1.0, 0.25]])}
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].round(4).tolist()
      [[0.9538, -1.9538], [0.4418, 1.4634]]
    """
    return chain(maybe_add_decayed_weights(weight_decay),
                 scale_by_madgrad(learning_rate, momentum, eps))
