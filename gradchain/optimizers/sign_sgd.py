"""signSGD and Signum: steps of the same size in every coordinate, along the gradient's sign."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.moments.ema import ema
from gradchain.preconditioners.sign import scale_by_sign
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """signSGD (Bernstein et al. 2018, "signSGD: Compressed Optimisation for Non-Convex
    Problems"): ``θ -= γ_t · sign(g_t)``.

    ``chain(scale_by_sign(), scale_by_learning_rate(γ))``; keeps no statistic. Optax's
    ``sign_sgd``.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states (no
      statistic: ``scale_by_sign``'s empty state, then the learning rate's ``ScaleState``;
      ``describe_state`` lists them, ``get_hyperparams`` reads the hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.sign_sgd(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # each entry moves by γ
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.8, -2.0]
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


@public
def signum(learning_rate: ScalarOrSchedule, beta: ScalarOrSchedule = 0.9,
           accumulator_dtype=None) -> GradientTransformation:
    """Signum (Bernstein et al. 2018; Zhao et al. 2024, "Deconstructing What Makes a Good
    Optimizer for Language Models"): the sign of the gradient's moving average::

        m_t = β m_{t-1} + (1 - β) g_t   (m_0 = 0)        θ -= γ_t · sign(m_t)

    ``chain(ema(β), scale_by_sign(), scale_by_learning_rate(γ))``: no bias correction (a
    positive factor does not change a sign). Optax's ``signum``.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.
      beta: β in ``[0, 1]``, the decay of the moving average (a number, array or schedule).
      accumulator_dtype: dtype of ``m`` (default: the params').

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (``EmaState`` with ``m``, ``scale_by_sign``'s empty state, the learning rate's ``ScaleState``;
      ``describe_state`` lists them, ``get_hyperparams`` reads the hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.signum(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.8, -2.0]
    """
    return chain(ema(beta, dtype=accumulator_dtype, hyperparam_name="beta"), scale_by_sign(),
                 scale_by_learning_rate(learning_rate))
