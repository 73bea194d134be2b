"""AdEMAMix and simplified AdEMAMix: Adam with a mixture of a fast and a slow momentum."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.ademamix import (scale_by_ademamix,
                                                scale_by_simplified_ademamix)
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def ademamix(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9,
             b2: ScalarOrSchedule = 0.999, b3: ScalarOrSchedule = 0.9999,
             alpha: ScalarOrSchedule = 5.0, eps: ScalarOrSchedule = 1e-8,
             eps_root: ScalarOrSchedule = 0.0, mu_dtype=None, weight_decay: ScalarOrSchedule = 0.0,
             mask=None) -> GradientTransformation:
    """AdEMAMix (Pagliardini et al. 2024):
    ``θ -= γ · ((m̂1_t + α m2_t) / (√(v̂_t + eps_root) + ε) + λθ)``.

    ``m̂1``, ``v̂``: Adam's bias-corrected moments (β1, β2); ``m2``: a slow, uncorrected EMA of
    the gradient (β3). ``chain(scale_by_ademamix(β1, β2, β3, α, ε, eps_root),
    add_decayed_weights(λ, mask), scale_by_learning_rate(γ))``: decoupled decay scaled by the
    learning rate, as AdamW. Arguments, defaults and numbers are Optax's ``contrib.ademamix``
    (``alpha=5.0`` here, 6.0 in ``scale_by_ademamix``, as there).

    Args:
      learning_rate: γ ``>= 0``; a number, array or schedule.
      b1: β1 in ``[0, 1)``, the fast EMA.
      b2: β2 in ``[0, 1)``, the second moment.
      b3: β3 in ``[0, 1]``, the slow EMA; a number, array or schedule.
      alpha: α ``>= 0``, the slow EMA's weight; a number, array or schedule.
      eps: ε ``>= 0``, added to the root.
      eps_root: ``>= 0``, added under the root.
      mu_dtype: dtype of the moments (default: the params').
      weight_decay: λ ``>= 0``.
      mask: the leaves that decay (as ``add_decayed_weights``).

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts' states;
      ``describe_state`` lists them, ``get_hyperparams``/``set_hyperparams`` read and set the
      hyperparameters by the argument names).

    Example (two steps on a 2×2 matrix):
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([[1.0, -2.0], [0.5, 1.5]])}
      >>> tx = gc.ademamix(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[0.5, -0.5], [1.0, 0.25]])}
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].round(4).tolist()
      [[0.7999, -1.7999], [0.2999, 1.2999]]
    """
    return chain(scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
                 maybe_add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


@public
def simplified_ademamix(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.99,
                        b2: ScalarOrSchedule = 0.95, alpha: ScalarOrSchedule = 0.0,
                        eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0,
                        weight_decay: ScalarOrSchedule = 0.0, mask=None) -> GradientTransformation:
    """Simplified AdEMAMix (Morwani et al. 2025):
    ``θ -= γ · ((m_t + α g_t) / (√(v̂_t + eps_root) + ε) + λθ)``, ``m_t = β1 m_{t-1} + g_t``.

    One momentum buffer (an undamped sum) instead of AdEMAMix's two, no schedule for α;
    ``α = 0`` is Adam up to the scale of ``γ`` and ``β1``. ``chain(scale_by_simplified_ademamix(
    β1, β2, α, ε, eps_root), add_decayed_weights(λ, mask), scale_by_learning_rate(γ))``.
    Arguments, defaults and numbers are Optax's ``contrib.simplified_ademamix``.

    Args:
      learning_rate: γ ``>= 0``; a number, array or schedule.
      b1: β1 in ``[0, 1]``.
      b2: β2 in ``[0, 1)``.
      alpha: α ``>= 0``, the gradient's weight beside the momentum.
      eps: ε ``>= 0``, added to the root.
      eps_root: ``>= 0``, added under the root.
      weight_decay: λ ``>= 0``.
      mask: the leaves that decay (as ``add_decayed_weights``).

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts' states;
      ``describe_state`` lists them, ``get_hyperparams``/``set_hyperparams`` read and set the
      hyperparameters by the argument names).

    Example (two steps on a 2×2 matrix):
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([[1.0, -2.0], [0.5, 1.5]])}
      >>> tx = gc.simplified_ademamix(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[0.5, -0.5], [1.0, 0.25]])}
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].round(4).tolist()
      [[0.701, -1.701], [0.201, 1.201]]
    """
    return chain(scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
                 maybe_add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))
