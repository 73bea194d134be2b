"""Freezing for fine-tuning: frozen leaves get zero updates and hold no optimizer state.

``freeze_where(adam(1e-4), lambda path, leaf: path[0] in ("embed", "block_0"))`` trains the rest
of the model with Adam and keeps the early layers fixed. The optimizer never sees the frozen leaves
(they are ``MaskedNode()`` placeholders in its state), so freezing half of a model halves the
optimizer's state memory. Optax's ``freeze(mask)`` only zeroes the updates (chain it in front of
an optimizer and the optimizer still keeps state for every leaf); its ``selective_transform`` is
``freeze_where`` with the mask as a prefix tree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.transformation import EmptyState, GradientTransformation
from gradchain.wrappers.labels import Shown
from gradchain.wrappers.masked import masked, masked_transformation


@public
def set_to_zero() -> GradientTransformation:
    """``u -> 0`` (zeros of each update's shape and dtype); keeps no state. Optax's
    ``set_to_zero``.

    Returns:
      A stateless ``GradientTransformation`` (its state is ``EmptyState()``).
    """

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del params, extra
        return jax.tree.map(jnp.zeros_like, updates), state

    return GradientTransformation(init, update, name="set_to_zero", state_type=EmptyState)


@public
def freeze_where(optimizer, where) -> GradientTransformation:
    """Zero updates and no state for the leaves ``where`` selects; ``optimizer`` on the others.

    Args:
      optimizer: the transformation that trains the leaves that are not frozen.
      where: ``fn(path, leaf) -> bool``, True for a frozen leaf (``path`` a tuple of plain
        keys), Optax's ``fn(params) -> prefix tree`` (told apart by the signature; one that fits
        both gets ``(path, leaf)``), or a prefix tree of booleans matched to the params by key
        (``{"encoder": True, "head": False}``). A scalar ``True`` freezes everything.

    Raises:
      ValueError: naming the path where a mask tree does not match the params.

    Returns:
      A ``GradientTransformation`` whose state is ``MaskedState(inner_state)``, the inner state
      holding ``MaskedNode()`` where a leaf is frozen.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"kernel": jnp.array([1.0, 2.0]), "bias": jnp.array([1.0])}
      >>> grads = {"kernel": jnp.array([1.0, 1.0]), "bias": jnp.array([1.0])}
      >>> tx = gc.freeze_where(gc.sgd(0.5), lambda path, leaf: path[-1] == "bias")
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> {k: v.tolist() for k, v in updates.items()}
      {'bias': [0.0], 'kernel': [-0.5, -0.5]}
    """
    return masked_transformation("freeze_where", optimizer, where, native_form="path",
                                 selected_when=False, others=jnp.zeros_like,
                                 display={"frozen": Shown(where)}, inner_name="optimizer")


@public
def freeze(mask) -> GradientTransformation:
    """Optax's ``freeze``: zero updates where ``mask`` (a prefix tree of booleans, or a function
    in either form of ``masked``) is True,
    pass the others through: ``masked(set_to_zero(), mask)``.

    Args:
      mask: True for a frozen leaf: a prefix tree of booleans, ``fn(params)`` returning one, or
        ``fn(path, leaf) -> bool``.

    Returns:
      A ``GradientTransformation`` whose state is ``MaskedState(EmptyState())``.
    """
    return masked(set_to_zero(), mask)


@public
def selective_transform(optimizer, *, freeze_mask) -> GradientTransformation:
    """Optax's ``selective_transform``: ``optimizer`` on the leaves where ``freeze_mask`` is
    False, zero updates and no state where it is True (a prefix tree of booleans, or a function
    in either form of ``masked``).

    Args:
      optimizer: the transformation of the leaves that are not frozen.
      freeze_mask: True for a frozen leaf: a prefix tree of booleans, ``fn(params)`` returning
        one, or ``fn(path, leaf) -> bool``.

    Returns:
      A ``GradientTransformation`` whose state is ``MaskedState(inner_state)``, the inner state
      holding ``MaskedNode()`` where a leaf is frozen.
    """
    return masked_transformation("selective_transform", optimizer, freeze_mask,
                                 native_form="params", selected_when=False,
                                 others=jnp.zeros_like, display={"freeze_mask": Shown(freeze_mask)},
                                 inner_name="optimizer")
