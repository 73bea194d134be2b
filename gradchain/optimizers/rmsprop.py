"""RMSProp, plain or centred, with optional momentum."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.moments.momentum import scale_by_momentum
from gradchain.preconditioners.rms import scale_by_rms, scale_by_stddev
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def rmsprop(learning_rate: ScalarOrSchedule, decay: ScalarOrSchedule = 0.9,
            eps: ScalarOrSchedule = 1e-8, initial_scale: ScalarOrSchedule = 0.0,
            eps_in_sqrt: bool = True, centered: bool = False, momentum=None, nesterov: bool = False,
            bias_correction: bool = False, *, weight_decay: ScalarOrSchedule = 0.0,
            accumulator_dtype=None) -> GradientTransformation:
    """RMSProp: ``θ -= γ · g / √(v + ε)``, ``v = EMA_decay(g²)`` (centred: ``v - EMA(g)²``).

    Arguments and defaults are Optax's; with momentum μ the step is ``b = μ b + γ g/√(…)``,
    ``θ -= b`` (lr inside the buffer, as Optax; torch puts it outside, equal at constant lr).
    ``torch.optim.RMSprop`` is ``rmsprop(lr, decay=0.99, eps=1e-8, eps_in_sqrt=False)`` with
    its ``weight_decay`` as L2. ``nesterov=True`` needs a ``momentum``.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      decay: the EMA's decay of ``g²`` in ``[0, 1]`` (torch's ``alpha``, 0.99 there).
      eps: ε ``>= 0``.
      initial_scale: ``v_0 >= 0``.
      eps_in_sqrt: ε inside the root (Optax) or added to the root (torch).
      centered: divide by the standard deviation, ``v - EMA(g)²``.
      momentum: μ, or None for no momentum.
      nesterov: Nesterov momentum (needs ``momentum``).
      bias_correction: bias-correct the EMAs (Optax's option).
      weight_decay: λ ``>= 0`` of L2 regularisation.
      accumulator_dtype: dtype of the EMAs and the buffer (default: the params').

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.rmsprop(learning_rate=0.01, decay=0.75, eps=0.0)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.98, -1.98]
    """
    if nesterov and momentum is None:
        raise ValueError("rmsprop: nesterov=True needs a momentum, got momentum=None")
    precondition = scale_by_stddev if centered else scale_by_rms
    return chain(
        maybe_add_decayed_weights(weight_decay),
        precondition(decay, eps, initial_scale, eps_in_sqrt, bias_correction,
                     accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(learning_rate),
        identity() if momentum is None else scale_by_momentum(
            momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype))
