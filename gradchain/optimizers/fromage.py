"""Fromage: layer-wise relative steps that keep the weights' norm from growing."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.trust_ratio import scale_by_trust_ratio
from gradchain.step_size.fromage_step import fromage_step
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def fromage(learning_rate: ScalarOrSchedule,
            min_norm: ScalarOrSchedule = 1e-6) -> GradientTransformation:
    """Fromage, Frobenius matched gradient descent (Bernstein et al. 2020, "On the distance
    between two neural networks and the stability of learning"), per leaf (a layer)::

        θ <- (θ - γ_t · ‖θ‖/‖g‖ · g) / √(1 + γ_t²)

    ``chain(scale_by_trust_ratio(min_norm), fromage_step(γ))``: each layer moves by ``γ`` of
    its own norm and is shrunk back; no statistic is kept. Arguments, defaults and numbers are
    Optax's ``fromage`` (both norms floored at ``min_norm``; a ratio of 1 where one is 0).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule (the paper's 0.01 is a good
        default for deep networks).
      min_norm: floor of ``‖θ‖`` and ``‖g‖``, ``>= 0``.

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (the trust ratio's state, then ``fromage_step``'s, which holds the learning rate; no
      statistic; ``describe_state`` lists them, ``get_hyperparams`` reads the hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.fromage(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.7439, -2.003]
    """
    return chain(scale_by_trust_ratio(min_norm), fromage_step(learning_rate))
