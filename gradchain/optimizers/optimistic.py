"""Optimistic gradient descent: a step along the gradient extrapolated one step ahead."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.moments.optimistic_gradient import scale_by_optimistic_gradient
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def optimistic_gradient_descent(learning_rate: ScalarOrSchedule, alpha: ScalarOrSchedule = 1.0,
                                beta: ScalarOrSchedule = 1.0) -> GradientTransformation:
    """Optimistic gradient descent (Mokhtari et al. 2019, "A Unified Analysis of Extra-gradient
    and Optimistic Gradient Methods for Saddle Point Problems")::

        θ -= γ_t · ((α + β) g_t - β g_{t-1})       (g_0 = g_1: the first step is γ α g_1)

    ``chain(scale_by_optimistic_gradient(α, β), scale_by_learning_rate(γ))``; keeps the previous
    gradient. It converges in the last iterate on min-max games where gradient descent-ascent
    cycles. Arguments, defaults and numbers are Optax's ``optimistic_gradient_descent``.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.
      alpha: α ``>= 0``, the weight of the gradient.
      beta: β ``>= 0``, the weight of its change since the previous step.

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (the previous gradient in ``scale_by_optimistic_gradient``'s ``BranchState``, then the
      learning rate's ``ScaleState``; ``describe_state`` lists them, ``get_hyperparams`` reads the
      hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.optimistic_gradient_descent(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.95, -2.1]
    """
    return chain(scale_by_optimistic_gradient(alpha, beta),
                 scale_by_learning_rate(learning_rate))
