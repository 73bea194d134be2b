"""Masks: apply a transformation to a subset of the leaves and pass the others through.

``apply_where(add_decayed_weights(1e-4), lambda path, leaf: leaf.ndim > 1)`` decays kernels and
leaves biases and normalisation scales alone. The inner transformation sees only the selected
leaves (the others are ``MaskedNode()`` placeholders), so it keeps state for those only. Optax's
``masked`` is the same with a mask given as a prefix tree or a function of the params tree.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_same_structure, check_transformations
from gradchain.wrappers.labels import (Shown, check_booleans, flatten_leaves, keep_only,
                                       leaf_labels, mask_extras, put_owned)


class MaskedState(NamedTuple):
    inner_state: Any


def masked_transformation(owner: str, inner, mask, *, path_function: bool,
                          selected_when: bool = True, others=None,
                          mask_compatible_extra_args: bool = False,
                          display: dict | None = None,
                          inner_name: str = "inner") -> GradientTransformation:
    """``inner`` on the leaves whose mask value is ``selected_when``; ``others(u)`` (default: the
    identity) on the rest. The implementation of ``apply_where``, ``masked`` and the freezers."""
    check_transformations(owner, {inner_name: inner})

    def split(tree, against):
        paths, leaves, treedef, values = leaf_labels(owner, mask, tree, what="mask",
                                                     path_function=path_function, against=against)
        keep = [v == selected_when for v in check_booleans(owner, values, paths)]
        return leaves, treedef, keep

    def init(params):
        leaves, treedef, keep = split(params, "params")
        return MaskedState(inner.init(keep_only(treedef, leaves, keep)))

    def update(updates, state, params=None, **extra):
        leaves, treedef, keep = split(updates, "updates")
        sub_params = None
        if params is not None:
            check_same_structure(owner, updates, params, "params")
            sub_params = keep_only(treedef, flatten_leaves(params)[1], keep)
        new_updates, inner_state = call_update(
            inner, keep_only(treedef, leaves, keep), state.inner_state, sub_params,
            mask_extras(extra, treedef, keep, mask_compatible_extra_args))
        out = [u if others is None else others(u) for u in leaves]
        put_owned(owner, out, new_updates, keep)
        return treedef.unflatten(out), MaskedState(inner_state)

    return GradientTransformation(init, update, name=owner,
                                  hyperparams=display or {"mask": Shown(mask)},
                                  children=[inner], state_type=MaskedState)


def apply_where(inner, where) -> GradientTransformation:
    """Apply ``inner`` to the leaves ``where`` selects; pass the others through unchanged.

    ``out[leaf] = inner(selected updates)[leaf]`` if selected, else ``u[leaf]``. State is kept
    for the selected leaves only.

    Args:
      inner: any gradient transformation (gradchain's or Optax's).
      where: ``fn(path, leaf) -> bool`` with ``path`` a tuple of plain keys
        (``lambda path, leaf: path[-1] == "kernel"``), or a prefix tree of booleans matched to
        the params by key (``{"encoder": False, "head": True}``).

    Raises:
      ValueError: naming the path where a mask tree does not match the params or holds a value
        that is not a boolean; raised before any state is computed.
    """
    return masked_transformation("apply_where", inner, where, path_function=True,
                                 display={"where": Shown(where)})


def masked(inner, mask, *, mask_compatible_extra_args: bool = False) -> GradientTransformation:
    """Optax's ``masked``: the same arguments and numbers.

    ``mask`` is a prefix tree of booleans or, as in Optax, a function of the params tree
    returning one (``apply_where`` takes a function of each leaf's path instead). Unlike Optax,
    the tree is matched by key, so a plain dict fits an ``nnx.State``. Its state is
    ``MaskedState(inner_state)``, as Optax's.
    """
    return masked_transformation("masked", inner, mask, path_function=False,
                                 mask_compatible_extra_args=mask_compatible_extra_args)
