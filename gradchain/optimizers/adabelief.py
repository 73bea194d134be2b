"""AdaBelief: Adam whose step size follows the belief in the gradient."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.belief import scale_by_belief
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def adabelief(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9,
              b2: ScalarOrSchedule = 0.999, eps: ScalarOrSchedule = 1e-16,
              eps_root: ScalarOrSchedule = 1e-16, *,
              nesterov: bool = False) -> GradientTransformation:
    """AdaBelief (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief
    in Observed Gradients")::

        m_t = β1 m_{t-1} + (1 - β1) g_t
        s_t = β2 s_{t-1} + (1 - β2) (g_t - m_t)² + eps_root
        θ -= γ_t · m̂_t / (√ŝ_t + ε)          (m̂, ŝ: Adam's bias corrections)

    A gradient close to its prediction ``m_t`` gets a large step, a surprising one a small
    step. ``chain(scale_by_belief(β1, β2, ε, eps_root), scale_by_learning_rate(γ))``: as much
    state as Adam (``m`` is shared, not copied). Arguments, defaults and numbers are Optax's
    ``adabelief`` (the paper's defaults are ``eps=1e-8``, ``eps_root=0``).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      eps: ε ``>= 0``, added after the root.
      eps_root: ``>= 0``, added to ``s`` at every step (keep it > 0 to differentiate through
        the update).
      nesterov: Nesterov's look-ahead on the first moment (``nesterov_look_ahead``).

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (``m`` and ``s`` once each in ``scale_by_belief``'s ``BranchState``, then the learning rate's
      ``ScaleState``; ``describe_state`` lists them, ``get_hyperparams`` reads the hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.adabelief(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.7814, -1.8945]
    """
    return chain(scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))
