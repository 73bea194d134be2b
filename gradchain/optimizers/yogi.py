"""Yogi: Adam with a second moment that changes additively."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.yogi import scale_by_yogi
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def yogi(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
         eps: ScalarOrSchedule = 1e-3) -> GradientTransformation:
    """Yogi (Zaheer et al. 2018, "Adaptive Methods for Nonconvex Optimization")::

        v_t = v_{t-1} - (1 - β2) sign(v_{t-1} - g_t²) g_t²      θ -= γ_t · m̂_t / (√v̂_t + ε)

    with Adam's first moment and both moments started at 1e-6 and bias-corrected:
    ``chain(scale_by_yogi(β1, β2, ε), scale_by_learning_rate(γ))``. Arguments, defaults and
    numbers are Optax's ``yogi`` (ε = 1e-3, the paper's).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      eps: ε ``>= 0``, added after the root.

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (``m`` and ``v`` in ``scale_by_yogi``'s ``BranchState``, then the learning rate's
      ``ScaleState``; ``describe_state`` lists them, ``get_hyperparams`` reads the hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.yogi(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.8076, -1.9056]
    """
    return chain(scale_by_yogi(b1, b2, eps), scale_by_learning_rate(learning_rate))
