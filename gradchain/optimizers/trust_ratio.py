"""LARS and LAMB: large-batch optimizers built on the layer-wise trust ratio."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.moments.momentum import scale_by_momentum
from gradchain.preconditioners.adam import scale_by_adam
from gradchain.preconditioners.trust_ratio import scale_by_trust_ratio
from gradchain.regularization.weight_decay import add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.wrappers.masked import masked
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


def _where(mask, inner):
    """``inner`` on the leaves ``mask`` selects (Optax's ``masked``); all leaves for ``True``
    or ``None``."""
    return inner if mask is None or mask is True else masked(inner, mask)


@public
def lars(learning_rate: ScalarOrSchedule, weight_decay: ScalarOrSchedule = 0.0,
         weight_decay_mask=True, trust_coefficient: ScalarOrSchedule = 0.001,
         eps: ScalarOrSchedule = 0.0, trust_ratio_mask=True, momentum: ScalarOrSchedule = 0.9,
         nesterov: bool = False, *, axis_name=None) -> GradientTransformation:
    """LARS (You et al. 2017): SGD with momentum on layer-wise rescaled gradients.

    ``u = η‖θ‖ / (‖g + λθ‖ + ε) · (g + λθ)`` per leaf; ``b = μ b + γ u``; ``θ -= b``:
    ``chain(add_decayed_weights(λ), scale_by_trust_ratio(η), scale_by_learning_rate(γ),
    scale_by_momentum(μ))``. Arguments, defaults and numbers are Optax's ``lars`` (the learning
    rate inside the buffer; the paper's local rate puts λ outside the norm, see
    ``scale_by_trust_ratio``).

    The usual exclusions are masks (as ``masked``: a prefix tree of booleans, a function of the
    params returning one, or ``fn(path, leaf)``; True = apply): e.g. ``weight_decay_mask`` and
    ``trust_ratio_mask`` both ``lambda path, leaf: leaf.ndim > 1`` leave biases and
    normalisation scales with plain momentum SGD.

    ``axis_name`` (not in Optax): the mesh or ``pmap`` axis the params are split over, for the
    norms of whole leaves (``scale_by_trust_ratio``).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      weight_decay: λ ``>= 0``, added before the trust ratio.
      weight_decay_mask: which leaves decay (True: all; a mask as ``masked``).
      trust_coefficient: η ``>= 0``.
      eps: ε ``>= 0`` added to the norm of the update.
      trust_ratio_mask: which leaves are rescaled (True: all).
      momentum: μ of the buffer.
      nesterov: Nesterov momentum.
      axis_name: the mesh or ``pmap`` axis the params are split over, or None.

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.lars(learning_rate=0.1, trust_coefficient=0.5)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([1.0, -1.0])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.9, -1.9]
    """
    return chain(
        _where(weight_decay_mask, add_decayed_weights(weight_decay)),
        _where(trust_ratio_mask, scale_by_trust_ratio(trust_coefficient=trust_coefficient,
                                                      eps=eps, axis_name=axis_name)),
        scale_by_learning_rate(learning_rate),
        scale_by_momentum(momentum, nesterov=nesterov))


@public
def lamb(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
         eps: ScalarOrSchedule = 1e-6, eps_root: ScalarOrSchedule = 0.0,
         weight_decay: ScalarOrSchedule = 0.0, mask=None, *, trust_ratio_mask=None,
         axis_name=None) -> GradientTransformation:
    """LAMB (You et al. 2020): Adam's step plus decoupled decay, rescaled layer by layer.

    ``r = m̂ / (√v̂ + ε) + λθ``; ``θ -= γ · ‖θ‖ / ‖r‖ · r`` per leaf (ratio 1 when a norm is 0):
    ``chain(scale_by_adam(β1, β2, ε), add_decayed_weights(λ), scale_by_trust_ratio(),
    scale_by_learning_rate(γ))``. Arguments, defaults and numbers are Optax's ``lamb``, whose
    ``mask`` selects the leaves that are decayed; ``trust_ratio_mask`` (not in Optax) selects
    the leaves that are rescaled (the paper exempts biases and normalisation scales from both).
    ``axis_name`` (not in Optax): the mesh or ``pmap`` axis the params are split over, for the
    norms of whole leaves (``scale_by_trust_ratio``). The trust ratio's own ε (0) is stored as
    ``trust_ratio_eps``, apart from Adam's ``eps``.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      eps: ε ``>= 0``.
      eps_root: ε inside the root.
      weight_decay: λ ``>= 0`` of the decoupled decay.
      mask: which leaves decay (as ``masked``); None: all.
      trust_ratio_mask: which leaves are rescaled; None: all.
      axis_name: the mesh or ``pmap`` axis the params are split over, or None.

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.lamb(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.9, -1.8]
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root),
        _where(mask, add_decayed_weights(weight_decay)),
        _where(trust_ratio_mask, scale_by_trust_ratio(
            axis_name=axis_name, hyperparam_name={"eps": "trust_ratio_eps"})),
        scale_by_learning_rate(learning_rate))
