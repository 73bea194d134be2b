"""Weight decay. Its position in a chain decides which kind it is."""

from __future__ import annotations

from typing import NamedTuple

import jax

from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, state_names, statically_zero
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.core.validation import check_range
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


class WeightDecayState(NamedTuple):
    count: jax.Array
    hyperparams: dict


@public
def add_decayed_weights(weight_decay: ScalarOrSchedule = 0.0, mask=None, *,
                        hyperparam_name=None) -> GradientTransformation:
    """``u -> u + λ · θ``.

    Placed before a preconditioner it is L2 regularisation (``g += λθ``, as
    ``torch.optim.Adam(weight_decay=λ)`` and ``SGD``); placed after it and before
    ``scale_by_learning_rate`` it is decoupled weight decay (Loshchilov & Hutter 2019, AdamW),
    scaled by the learning rate as in torch and Optax.

    ``weight_decay`` λ is ``>= 0``: a number, array or schedule. Needs ``params``. ``mask``
    (a prefix tree of booleans, Optax's function of the params returning one, or
    ``fn(path, leaf) -> bool``) restricts the decay to the selected leaves, through ``masked``.

    Args:
      weight_decay: λ ``>= 0``; a number, array or schedule.
      mask: which leaves decay: a prefix tree of booleans, ``fn(params)`` returning one, or
        ``fn(path, leaf) -> bool``; None: all.
      hyperparam_name: the key of λ in the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``WeightDecayState``: ``count`` and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``). (inside ``MaskedState`` with a ``mask``)

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.add_decayed_weights(0.5)
      >>> params = {"w": jnp.array([2.0])}
      >>> updates, _ = tx.update({"w": jnp.array([1.0])}, tx.init(params), params)
      >>> updates["w"].tolist()
      [2.0]
    """
    names = state_names("add_decayed_weights", hyperparam_name, ("weight_decay",))
    check_range("add_decayed_weights", names["weight_decay"], weight_decay, 0)
    decay = elementwise_transformation(
        "add_decayed_weights", WeightDecayState,
        lambda g, s, p, weight_decay: (g + weight_decay * p, None),
        Hyperparams(names, weight_decay=weight_decay), needs_params=True)
    if mask is None:
        return decay
    from gradchain.wrappers.masked import masked  # wrappers build on this layer, not below it
    return masked(decay, mask)


@public
def maybe_add_decayed_weights(weight_decay: ScalarOrSchedule = 0.0, mask=None, *,
                              hyperparam_name=None) -> GradientTransformation:
    """``add_decayed_weights(weight_decay)``, or ``identity()`` when it is a plain 0.

    Aliases use it so that a zero decay costs nothing (no read of the params). Pass the decay as
    an array, even ``jnp.asarray(0.0)``, to keep an adjustable stage. ``mask`` and
    ``hyperparam_name`` as in ``add_decayed_weights``.

    Args:
      weight_decay: λ ``>= 0``; a number, array or schedule.
      mask: which leaves decay (as ``add_decayed_weights``); None: all.
      hyperparam_name: the key of λ (as ``add_decayed_weights``).

    Returns:
      ``add_decayed_weights(weight_decay, mask)``, or ``identity()`` (state ``EmptyState()``)
      for a plain 0.
    """
    if statically_zero(weight_decay):
        return identity()
    return add_decayed_weights(weight_decay, mask, hyperparam_name=hyperparam_name)
