"""SGDW: SGD with decoupled weight decay."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.moments.momentum import scale_by_momentum
from gradchain.optimizers.sgd import check_momentum_options
from gradchain.regularization.weight_decay import add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def sgdw(learning_rate: ScalarOrSchedule, momentum=None, nesterov: bool = False,
         accumulator_dtype=None, *, weight_decay: ScalarOrSchedule = 1e-4,
         dampening: ScalarOrSchedule = 0.0, multiplier=None) -> GradientTransformation:
    """SGDW (Loshchilov & Hutter 2019): SGD whose weight decay bypasses the momentum buffer.

    Default (``multiplier=None``), the convention of torch's and Optax's AdamW carried over to
    SGD: ``θ -= γ_t · (b_t + λθ)`` with ``b`` the buffer of ``scale_by_momentum`` (the decay is
    scaled by the full learning rate):
    ``chain(scale_by_momentum(μ), add_decayed_weights(λ), scale_by_learning_rate(γ))``. Compare
    ``sgd(weight_decay=λ)``, where ``λθ`` enters the buffer (L2 regularisation).

    The paper's form: give the schedule multiplier ``η_t`` as ``multiplier`` and the constant
    base rate α as ``learning_rate``; then ``θ -= η_t · (α · b_t + λθ)``, the decay scaled by
    ``η_t`` only. (The paper's Algorithm 1 accumulates ``η_t α g`` in the buffer; the two agree
    while ``η_t`` is constant.)

    Args:
      learning_rate: γ (or α with ``multiplier``), ``>= 0``; a number, array or schedule.
      momentum: μ, or None for no buffer (then ``nesterov=True`` and a non-zero
        ``dampening`` are refused, as by ``sgd``).
      nesterov: Nesterov momentum.
      accumulator_dtype: dtype of the buffer (default: the params').
      weight_decay: λ ``>= 0``.
      dampening: torch's dampening of the buffer.
      multiplier: the schedule multiplier ``η_t``, or None.

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.sgdw(learning_rate=0.1, weight_decay=0.5)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.9, -1.85]
    """
    check_momentum_options(momentum, nesterov, dampening)
    buffer = identity() if momentum is None else scale_by_momentum(
        momentum, dampening=dampening, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
    if multiplier is None:
        return chain(buffer, add_decayed_weights(weight_decay),
                     scale_by_learning_rate(learning_rate))
    return chain(buffer, scale_by_learning_rate(learning_rate, flip_sign=False),
                 add_decayed_weights(weight_decay),
                 scale_by_learning_rate(multiplier, hyperparam_name="multiplier"))
