"""SGD with annealed gradient noise."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.regularization.gradient_noise import add_gradient_noise
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def noisy_sgd(learning_rate: ScalarOrSchedule, eta: ScalarOrSchedule = 0.01,
              gamma: ScalarOrSchedule = 0.55, key=None, *,
              form: str = "variance") -> GradientTransformation:
    """SGD on noisy gradients (Neelakantan et al. 2015): ``θ -= γ_t (g + σ_t ξ)``, ξ ~ N(0, 1),
    ``σ_t² = η / (1 + t)^γ`` (``form="std"``: ``σ_t = η / (1 + t)^γ``, the notes' form).

    ``chain(add_gradient_noise(η, γ, key, form=form), scale_by_learning_rate(γ_t))``.
    Arguments, defaults and numbers are Optax's ``noisy_sgd`` (for the same key), except that
    the key is required here (Optax warns without one and uses 0).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      eta: η ``>= 0``, the noise scale.
      gamma: γ ``>= 0``, its annealing exponent.
      key: the PRNG key (an int seed or a JAX key), kept in the state.
      form: ``"variance"`` (Optax, the paper) or ``"std"`` (the notes).

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.noisy_sgd(learning_rate=0.1, eta=0.0, key=0)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.95, -1.95]
    """
    return chain(add_gradient_noise(eta, gamma, key, form=form),
                 scale_by_learning_rate(learning_rate))
