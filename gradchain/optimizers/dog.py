"""DoG and DoWG: SGD whose step size is a distance over gradient norms (learning-rate free)."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.regularization.weight_decay import add_decayed_weights
from gradchain.step_size.dog import scale_by_dog, scale_by_dowg
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


def _decay(weight_decay, mask):
    return identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)


@public
def dog(learning_rate: ScalarOrSchedule = 1.0, init_step=("heuristic", 1e-6),
        eps: ScalarOrSchedule = 1e-8, weight_decay=None, mask=None, *,
        axis_name=None) -> GradientTransformation:
    """DoG (Ivgi, Hinder & Carmon 2023): ``θ -= γ_t · r̄_t / √(Σ_{k≤t} ‖g_k‖² + ε) · g_t``, with
    ``r̄_t`` the largest distance from the starting params so far (``scale_by_dog``).

    ``chain(add_decayed_weights(λ, mask), scale_by_dog(init_step, eps),
    scale_by_learning_rate(γ))``; Optax's ``contrib.dog``: same arguments, defaults and
    numbers. The learning rate is a multiplier of DoG's step (1: none; or a decaying schedule).
    The authors recommend evaluating an average of the iterates.

    Args:
      learning_rate: γ ``>= 0``, a number, array or schedule.
      init_step: ``(kind, value)``: see ``scale_by_dog``.
      eps: ε ``>= 0``.
      weight_decay: λ ``>= 0`` added to the gradient (L2) before DoG, or None.
      mask: which leaves decay (as ``add_decayed_weights``).
      axis_name: the axis the leaves are split over, for the norms (``scale_by_dog``).

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (the decay's, ``DogState`` with the starting params, ``r̄`` and ``G``, then the learning
      rate's ``ScaleState``; ``describe_state`` lists them, ``get_hyperparams`` reads the
      hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.dog(init_step=("learning_rate", 0.1))
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # first step: γ_0 = 0.1
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.9304, -1.9892]
    """
    return chain(_decay(weight_decay, mask), scale_by_dog(init_step, eps, axis_name=axis_name),
                 scale_by_learning_rate(learning_rate))


@public
def dowg(learning_rate: ScalarOrSchedule = 1.0, init_estim_sq_dist=None,
         eps: ScalarOrSchedule = 1e-4, weight_decay=None, mask=None, *,
         axis_name=None) -> GradientTransformation:
    """DoWG (Khaled, Mishchenko & Jin 2023): ``θ -= γ_t · r̄_t² / (√v_t + ε) · g_t`` with
    ``v_t = Σ_{k≤t} r̄_k² ‖g_k‖²`` (``scale_by_dowg``).

    ``chain(add_decayed_weights(λ, mask), scale_by_dowg(init_estim_sq_dist, eps),
    scale_by_learning_rate(γ))``; Optax's ``contrib.dowg``: same arguments, defaults and numbers.

    Args:
      learning_rate: γ ``>= 0``, a number, array or schedule.
      init_estim_sq_dist: the first squared-distance estimate ``> 0``, or None (ε).
      eps: ε ``> 0``.
      weight_decay: λ ``>= 0`` added to the gradient (L2) before DoWG, or None.
      mask: which leaves decay (as ``add_decayed_weights``).
      axis_name: the axis the leaves are split over, for the norms (``scale_by_dowg``).

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (the decay's, ``DowgState`` with the starting params, ``v`` and ``r̄²``, then the learning
      rate's ``ScaleState``; ``describe_state`` lists them, ``get_hyperparams`` reads the
      hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.dowg()
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # two steps
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.9903, -1.9985]
    """
    return chain(_decay(weight_decay, mask),
                 scale_by_dowg(init_estim_sq_dist, eps, axis_name=axis_name),
                 scale_by_learning_rate(learning_rate))
