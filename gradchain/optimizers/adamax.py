"""AdaMax and AdaMaxW: Adam with the infinity norm in the denominator."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.adamax import scale_by_adamax
from gradchain.regularization.weight_decay import add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def adamax(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9,
           b2: ScalarOrSchedule = 0.999, eps: ScalarOrSchedule = 1e-8) -> GradientTransformation:
    """AdaMax (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", section 7.1)::

        m_t = β1 m_{t-1} + (1 - β1) g_t       v_t = max(|g_t| + ε, β2 v_{t-1})
        θ -= γ_t · m_t / (1 - β1^t) / v_t

    ``chain(scale_by_adamax(β1, β2, ε), scale_by_learning_rate(γ))``. Arguments, defaults and
    numbers are Optax's ``adamax``.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1]``.
      eps: ε ``>= 0``, added to ``|g|`` inside the maximum.

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (``m`` and the infinity moment ``v`` in ``scale_by_adamax``'s ``BranchState``, then the
      learning rate's ``ScaleState``; ``describe_state`` lists them, ``get_hyperparams`` reads the
      hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.adamax(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.8262, -1.9053]
    """
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


@public
def adamaxw(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9,
            b2: ScalarOrSchedule = 0.999, eps: ScalarOrSchedule = 1e-8,
            weight_decay: ScalarOrSchedule = 1e-4, mask=None) -> GradientTransformation:
    """AdaMaxW: AdaMax with decoupled weight decay (Loshchilov & Hutter 2019)::

        θ -= γ_t · (m̂_t / v_t + λ θ)

    ``chain(scale_by_adamax(β1, β2, ε), add_decayed_weights(λ, mask),
    scale_by_learning_rate(γ))``: the decay is scaled by the full learning rate, as in Optax's
    ``adamaxw`` (whose arguments, defaults and numbers these are) and torch's AdamW.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1]``.
      eps: ε ``>= 0``.
      weight_decay: λ ``>= 0`` (a number, array or schedule).
      mask: the leaves that decay: a prefix tree of booleans, a function of the params
        returning one, or ``fn(path, leaf) -> bool``.

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (``m`` and ``v`` in a ``BranchState``, the decay's ``WeightDecayState``, the learning rate's
      ``ScaleState``; ``describe_state`` lists them, ``get_hyperparams`` reads the hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.adamaxw(learning_rate=0.1, weight_decay=0.5)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.7337, -1.7153]
    """
    return chain(scale_by_adamax(b1, b2, eps), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))
