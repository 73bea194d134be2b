"""Masks: apply a transformation to a subset of the leaves and pass the others through.

``apply_where(add_decayed_weights(1e-4), lambda path, leaf: leaf.ndim > 1)`` decays kernels and
leaves biases and normalisation scales alone. The inner transformation sees only the selected
leaves (the others are ``MaskedNode()`` placeholders), so it keeps state for those only. Optax's
``masked`` is the same; both take a mask as a prefix tree, ``fn(path, leaf)`` or Optax's
``fn(params)`` (see ``gradchain.wrappers.labels``), and nest: a mask over the whole model inside
another mask, a group or ``freeze_where`` selects nothing where the outer wrapper selected
nothing.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_same_structure, check_transformations
from gradchain.wrappers.labels import (NOT_OWNED, Shown, check_booleans, flatten_positions,
                                       keep_only, leaf_labels, mask_extras, put_owned, read_spec)


class MaskedState(NamedTuple):
    inner_state: Any


def masked_transformation(owner: str, inner, mask, *, native_form: str,
                          selected_when: bool = True, others=None,
                          mask_compatible_extra_args: bool = False,
                          display: dict | None = None,
                          inner_name: str = "inner") -> GradientTransformation:
    """``inner`` on the leaves whose mask value is ``selected_when``; ``others(u)`` (default: the
    identity) on the rest; placeholders (leaves an enclosing wrapper does not own) pass through.
    The implementation of ``apply_where``, ``masked`` and the freezers. ``native_form`` is the
    form (``"path"`` or ``"params"``) a mask function whose signature fits both is given."""
    check_transformations(owner, {inner_name: inner})
    spec = read_spec(owner, "mask", mask, native=native_form)

    def split(tree, against):
        paths, leaves, treedef, values = leaf_labels(owner, spec, tree, against=against)
        values = check_booleans(owner, values, paths)
        keep = [v is not NOT_OWNED and v == selected_when for v in values]
        owned = [v is not NOT_OWNED for v in values]
        return leaves, treedef, keep, owned

    def init(params):
        leaves, treedef, keep, _ = split(params, "params")
        return MaskedState(inner.init(keep_only(treedef, leaves, keep)))

    def update(updates, state, params=None, **extra):
        leaves, treedef, keep, owned = split(updates, "updates")
        sub_params = None
        if params is not None:
            check_same_structure(owner, updates, params, "params")
            sub_params = keep_only(treedef, flatten_positions(params)[1], keep)
        new_updates, inner_state = call_update(
            inner, keep_only(treedef, leaves, keep), state.inner_state, sub_params,
            mask_extras(extra, treedef, keep, mask_compatible_extra_args))
        out = [others(u) if others is not None and o else u for u, o in zip(leaves, owned)]
        put_owned(owner, out, new_updates, keep)
        return treedef.unflatten(out), MaskedState(inner_state)

    return GradientTransformation(init, update, name=owner,
                                  hyperparams=display or {"mask": Shown(mask)},
                                  children=[inner], parts=[(("inner_state",), inner)],
                                  state_type=MaskedState)


@public
def apply_where(inner, where) -> GradientTransformation:
    """Apply ``inner`` to the leaves ``where`` selects; pass the others through unchanged.

    ``out[leaf] = inner(selected updates)[leaf]`` if selected, else ``u[leaf]``. State is kept
    for the selected leaves only.

    Args:
      inner: any gradient transformation (gradchain's or Optax's).
      where: ``fn(path, leaf) -> bool`` with ``path`` a tuple of plain keys
        (``lambda path, leaf: path[-1] == "kernel"``), Optax's ``fn(params) -> prefix tree``
        (told apart by the signature; one that fits both gets ``(path, leaf)``), or a prefix
        tree of booleans matched to
        the params by key (``{"encoder": False, "head": True}``).

    Raises:
      ValueError: naming the path where a mask tree does not match the params or holds a value
        that is not a boolean; raised before any state is computed.

    Returns:
      A ``GradientTransformation`` whose state is ``MaskedState(inner_state)``, the inner state
      holding ``MaskedNode()`` at the leaves not selected.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"kernel": jnp.array([1.0, 2.0]), "bias": jnp.array([1.0])}
      >>> grads = {"kernel": jnp.array([1.0, 1.0]), "bias": jnp.array([1.0])}
      >>> tx = gc.apply_where(gc.add_decayed_weights(0.5), lambda path, leaf: leaf.ndim > 0
      ...                     and path[-1] == "kernel")
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> {k: v.tolist() for k, v in updates.items()}
      {'bias': [1.0], 'kernel': [1.5, 2.0]}
    """
    return masked_transformation("apply_where", inner, where, native_form="path",
                                 display={"where": Shown(where)})


@public
def masked(inner, mask, *, mask_compatible_extra_args: bool = False) -> GradientTransformation:
    """Optax's ``masked``: the same arguments and numbers.

    ``mask`` is a prefix tree of booleans or, as in Optax, a function of the params tree
    returning one; ``fn(path, leaf) -> bool`` is accepted too (told apart by the signature; one
    that fits both gets the params tree, as in Optax). Unlike Optax, the tree is matched by key,
    so a plain dict fits an ``nnx.State``. Its state is
    ``MaskedState(inner_state)``, as Optax's.

    Args:
      inner: any gradient transformation (gradchain's or Optax's).
      mask: True where ``inner`` applies: a prefix tree of booleans, ``fn(params)`` returning
        one, or ``fn(path, leaf) -> bool``.
      mask_compatible_extra_args: restrict keyword extras that have the updates' structure to
        the selected leaves, as in Optax.

    Returns:
      A ``GradientTransformation`` whose state is ``MaskedState(inner_state)``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"kernel": jnp.array([1.0, 2.0]), "bias": jnp.array([1.0])}
      >>> grads = {"kernel": jnp.array([1.0, 1.0]), "bias": jnp.array([1.0])}
      >>> tx = gc.masked(gc.scale(0.0), {"kernel": True, "bias": False})
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> {k: v.tolist() for k, v in updates.items()}
      {'bias': [1.0], 'kernel': [0.0, 0.0]}
    """
    return masked_transformation("masked", inner, mask, native_form="params",
                                 mask_compatible_extra_args=mask_compatible_extra_args)
