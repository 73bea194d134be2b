"""NAdamW: AdamW with Nesterov's first moment."""

from __future__ import annotations

from gradchain.core.public import public
from gradchain.optimizers.adam import adamw
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def nadamw(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9,
           b2: ScalarOrSchedule = 0.999, eps: ScalarOrSchedule = 1e-8,
           eps_root: ScalarOrSchedule = 0.0, mu_dtype=None, weight_decay: ScalarOrSchedule = 1e-4,
           mask=None, *, nesterov: bool = True, nu_dtype=None,
           multiplier=None) -> GradientTransformation:
    """NAdamW (Dozat 2016; Loshchilov & Hutter 2019): NAdam's step with decoupled weight decay::

        θ -= γ_t · ((β1 m_t / (1 - β1^{t+1}) + (1 - β1) g_t / (1 - β1^t)) / (√v̂_t + ε) + λ θ)

    ``adamw(..., nesterov=True)``; Optax's ``nadamw`` (the same partial of its ``adamw``, so the
    same arguments, defaults and numbers, ``nesterov`` included).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      eps: ε ``>= 0``, added after the root.
      eps_root: ``>= 0``, added inside it.
      mu_dtype: dtype of the first moment (default: the params').
      weight_decay: λ ``>= 0``, decoupled (a number, array or schedule).
      mask: the leaves that decay: a prefix tree of booleans, a function of the params
        returning one, or ``fn(path, leaf) -> bool``.
      nesterov: False gives plain ``adamw``.
      nu_dtype: dtype of the second moment (default: the params').
      multiplier: the schedule multiplier ``η_t`` of the paper's form (see ``adamw``).

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (``adamw``'s: ``m`` and ``v`` in a ``BranchState``, the decay's ``WeightDecayState``, the
      learning rate's ``ScaleState``; ``describe_state`` lists them, ``get_hyperparams`` reads the
      hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.nadamw(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.7605, -1.9085]
    """
    return adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
                 nesterov=nesterov, nu_dtype=nu_dtype, multiplier=multiplier)
