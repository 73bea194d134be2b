"""Adan: adaptive Nesterov momentum."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.adan import scale_by_adan
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def adan(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.98, b2: ScalarOrSchedule = 0.92,
         b3: ScalarOrSchedule = 0.99, eps: ScalarOrSchedule = 1e-8,
         eps_root: ScalarOrSchedule = 1e-8, weight_decay: ScalarOrSchedule = 0.0,
         mask=None) -> GradientTransformation:
    """Adan (Xie et al. 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
    Deep Models"), with ``d_t = g_t - g_{t-1}``::

        m_t = β1 m_{t-1} + (1 - β1) g_t      v_t = β2 v_{t-1} + (1 - β2) d_t
        n_t = β3 n_{t-1} + (1 - β3) (g_t + (1 - β2) d_t)²
        θ -= γ_t · ((m̂_t + (1 - β2) v̂_t) / (√(n̂_t + eps_root) + ε) + λ θ)

    ``chain(scale_by_adan(β1, β2, β3, ε, eps_root), add_decayed_weights(λ, mask),
    scale_by_learning_rate(γ))``: four statistics per param (``m``, ``v``, ``n`` and the
    previous gradient, stored once). Arguments, defaults and numbers are Optax's ``adan``: the
    β are decays (the paper's are their complements), the moments are bias-corrected, and the
    decay is AdamW's ``-γλθ`` (the paper divides by ``1 + γλ`` instead).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      b3: β3 in ``[0, 1)``.
      eps: ε ``>= 0``, added after the root.
      eps_root: ``>= 0``, added inside it.
      weight_decay: λ ``>= 0``, decoupled (a number, array or schedule).
      mask: the leaves that decay: a prefix tree of booleans, a function of the params
        returning one, or ``fn(path, leaf) -> bool``.

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (``m``, ``v``, ``n`` and the previous gradient in ``scale_by_adan``'s ``BranchState``, the
      decay's state (empty when λ = 0 and no mask), the learning rate's ``ScaleState``;
      ``describe_state`` lists them, ``get_hyperparams`` reads the hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.adan(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.8065, -1.9086]
    """
    return chain(scale_by_adan(b1, b2, b3, eps, eps_root),
                 maybe_add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))
