"""Which leaves a wrapper acts on: labels and masks, from a path function or a prefix tree.

Every wrapper that gives different leaves different treatment (``param_groups``, ``apply_where``,
``freeze_where`` and their Optax-named forms) resolves one label per parameter leaf here, at trace
time (labels are static Python values, never arrays computed at run time). A label is given as:

- a function of the leaf's tree path, ``fn(path, leaf) -> label``, where ``path`` is a tuple of
  plain keys (``("encoder", "layers", 0, "kernel")``: dict keys and attribute names as strings,
  sequence indices as ints; messages write it ``encoder/layers/0/kernel``, ``core/paths.py``)
  and ``leaf`` the array; it needs no copy of the params' structure;
- a prefix tree: a tree whose leaves are labels and whose nodes are matched to the params' nodes
  *by key*, not by container type, so a plain dict of labels fits Flax's ``nnx.State``, a
  ``FrozenDict`` or a custom pytree with the same keys. A label at an inner node covers its whole
  subtree. A pytree node is a tree even when it is callable (an Equinox module or a registered
  dataclass with ``__call__``; ``jax.tree_util.Partial`` is the exception: a function);
- Optax's form: a function of the whole params tree returning such a prefix tree.

Every wrapper takes both function forms; ``read_spec`` tells them apart once, when the wrapper is
built, by the function's signature (one required positional argument: ``fn(params)``; two:
``fn(path, leaf)``; a signature that fits both, or none that can be read, gets the wrapper's own
form: ``(path, leaf)`` for ``param_groups``/``apply_where``/``freeze_where``, the params tree for
Optax's names).

Wrappers compose: a wrapper inside another sees the leaves the outer one does not own as
placeholders (``MaskedNode()``, Optax's ``MaskedNode``, or any other node with no leaves, such
as an empty dict or Optax's ``map_params`` placeholder). A prefix tree over the whole model is
matched against that tree as it is against the params: an entry at or below a placeholder is
accepted and selects nothing, a tree may also leave placeholders out (a mask over the group's own
leaves), and placeholders are passed on unchanged. So a mask over the whole model works inside
``masked``, a group or ``freeze_where``, and empty params give empty states. Entries that match
nothing at all and owned leaves with no entry are still errors.

Flax ``nnx.Variable`` objects (``nnx.Optimizer`` gives ``init`` a state of ``Param`` variables and
``update`` plain arrays) count as leaves, so labels and paths are the same in both calls.

A leaf a transformation does not own is replaced by ``MaskedNode()``, a pytree node with no
children: the inner transformation neither sees it nor allocates state for it (Optax's approach).
Extracting the owned leaves into a flat list would keep the state as small, but lose the params'
paths and containers in the inner state; with placeholders each statistic mirrors the params'
tree (an ``nnx.State`` stays an ``nnx.State``) and a layer's statistics are found by its path
(``find_state(..., path=...)``).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, NamedTuple

import jax
import numpy as np

from gradchain.core.paths import format_path, path_keys, plain_key


class MaskedNode(NamedTuple):
    """Stands in for a leaf that a wrapped transformation does not own (no leaves, no state)."""


def _variable_type():
    """Flax's ``nnx.Variable`` class if Flax's nnx is loaded (no Variable exists otherwise)."""
    nnx = sys.modules.get("flax.nnx")
    return getattr(nnx, "Variable", None)


def _is_variable(x) -> bool:
    variable = _variable_type()
    return variable is not None and isinstance(x, variable)


def unwrap(x):
    """The array inside a Flax Variable; anything else as it is."""
    return x.get_value() if _is_variable(x) else x


def _flatten(tree, is_leaf):
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)
    paths = [path_keys(path) for path, _ in flat]
    return paths, [leaf for _, leaf in flat], treedef


def flatten_leaves(tree):
    """``(paths, leaves, treedef)``: the leaves (a Flax Variable counts as one), with their paths
    as tuples of plain keys."""
    return _flatten(tree, _is_variable)


def _is_placeholder(x) -> bool:
    """A pytree node with no leaves: a leaf an enclosing wrapper does not own (``MaskedNode()``,
    Optax's ``MaskedNode``), an empty container, ``None``, Optax's ``map_params`` placeholder."""
    if isinstance(x, (jax.Array, np.ndarray)) or _is_variable(x):
        return False
    return jax.tree_util.tree_structure(x, is_leaf=_is_variable).num_leaves == 0


def flatten_positions(tree):
    """``(paths, leaves, treedef)`` as ``flatten_leaves``, with every placeholder (a node with no
    leaves) as a position of its own, so that a prefix tree's entries there can be matched."""
    return _flatten(tree, lambda x: _is_variable(x) or _is_placeholder(x))


def children_by_key(node) -> dict:
    """The immediate children of a pytree node, keyed by plain key (dict key, attribute, index)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    return {plain_key(path[0]): child for path, child in flat}


def _is_label(node) -> bool:
    return node is None or jax.tree_util.all_leaves([node])


def _is_function(spec) -> bool:
    """A mask or labels function, as opposed to a tree: callable and not a pytree node (an
    Equinox module is callable, and is read as a tree), or a ``jax.tree_util.Partial``."""
    return callable(spec) and (_is_label(spec) or isinstance(spec, jax.tree_util.Partial))


class _NotOwned:
    def __repr__(self):
        return "NOT_OWNED"


NOT_OWNED = _NotOwned()
"""The label of a placeholder position: a leaf an enclosing wrapper does not own."""


class LabelSpec(NamedTuple):
    """A mask or labels argument as ``read_spec`` read it: ``form`` is ``"tree"``, ``"params"``
    (``fn(params) -> tree``, Optax's) or ``"path"`` (``fn(path, leaf) -> label``)."""
    what: str
    form: str
    value: Any


def _function_form(fn, native: str):
    """``"params"``, ``"path"``, ``native`` when the signature fits both or cannot be read,
    ``None`` when it fits neither."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return native
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is p.empty for p in positional)
    required_keywords = any(p.kind is p.KEYWORD_ONLY and p.default is p.empty
                            for p in parameters)
    variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    fits = [form for form, n in (("params", 1), ("path", 2))
            if not required_keywords and required <= n and (len(positional) >= n or variadic)]
    if len(fits) == 1:
        return fits[0]
    return native if fits else None


def read_spec(owner: str, what: str, spec, *, native: str) -> LabelSpec:
    """Read a mask or labels argument once, when the wrapper is built.

    A callable that is not a pytree node (or is a ``jax.tree_util.Partial``) is a function; its
    form is decided by its signature (see the module docstring; ``native`` is the wrapper's own
    form, ``"path"`` or ``"params"``). Raises ``TypeError`` naming ``owner`` for a function of
    neither form."""
    if not _is_function(spec):
        return LabelSpec(what, "tree", spec)
    form = _function_form(spec, native)
    if form is None:
        values, value = ("booleans", "a boolean") if what == "mask" else ("labels", "a label")
        raise TypeError(
            f"{owner}: the {what} function {getattr(spec, '__name__', type(spec).__name__)} "
            f"has the signature {inspect.signature(spec)}; it must be fn(params) (Optax's form: "
            f"the params tree to a prefix tree of {values}) or fn(path, leaf) (a leaf's path "
            f"and value to {value})")
    return LabelSpec(what, form, spec)


def _static(owner: str, what: str, path: tuple, label):
    if isinstance(label, jax.core.Tracer):
        raise ValueError(f"{owner}: the {what} at {format_path(path)} is a traced value; "
                         f"{what} must be static (Python values, not computed inside jit)")
    if hasattr(label, "shape") and hasattr(label, "dtype"):
        if label.shape != ():
            raise ValueError(f"{owner}: the {what} at {format_path(path)} is an array of shape "
                             f"{label.shape}; it needs one value per leaf, not one per entry")
        return label.item()
    return label


def _labels_from_prefix_tree(owner: str, what: str, prefix, paths: list, leaves: list,
                             against: str) -> list:
    """Each position's label: the prefix tree's entry at or above its path; ``NOT_OWNED`` for a
    placeholder, whether the tree has an entry for it, one below it or none."""
    labels, used = [], set()
    for path, leaf in zip(paths, leaves):
        node, depth, missing = unwrap(prefix), 0, False
        while not _is_label(node) and depth < len(path):
            children = children_by_key(node)
            missing = path[depth] not in children
            if missing:
                break
            node = unwrap(children[path[depth]])
            depth += 1
        if not missing:
            used.add(path[:depth])
        if _is_placeholder(leaf):
            labels.append(NOT_OWNED)
        elif missing:
            raise ValueError(
                f"{owner}: the {what} tree does not match the {against}: it has no entry "
                f"{path[depth]!r} at {format_path(path[:depth])} ({against} leaf "
                f"{format_path(path)}); its keys there are {sorted(map(str, children))}")
        elif not _is_label(node):
            raise ValueError(f"{owner}: the {what} tree does not match the {against}: it goes "
                             f"deeper than the {against} leaf {format_path(path)}")
        else:
            labels.append(_static(owner, what, path, node))
    _check_all_used(owner, what, prefix, used, against)
    return labels


def _check_all_used(owner: str, what: str, prefix, used: set, against: str) -> None:
    """Refuse a prefix-tree entry that matches no leaf (a typo would silently do nothing); the
    entries at and below a placeholder match it."""

    def walk(node, path):
        node = unwrap(node)
        if not _is_label(node) and path in used:
            return
        if _is_label(node):
            if path not in used:
                raise ValueError(f"{owner}: the {what} tree does not match the {against}: its "
                                 f"entry at {format_path(path)} matches no {against} leaf")
            return
        for key, child in children_by_key(node).items():
            walk(child, path + (key,))

    walk(prefix, ())


def leaf_labels(owner: str, spec: LabelSpec, tree, *, against: str = "params"):
    """One static label per position of ``tree`` (``flatten_positions``):
    ``(paths, leaves, treedef, labels)``, with ``NOT_OWNED`` at placeholders.

    ``spec`` comes from ``read_spec``. Raises ``ValueError`` naming the first path where a
    prefix tree and ``tree`` (called ``against`` in messages: "params" or "updates") disagree.
    """
    paths, leaves, treedef = flatten_positions(tree)
    if spec.form == "path":
        labels = [NOT_OWNED if _is_placeholder(leaf)
                  else _static(owner, spec.what, path, spec.value(path, unwrap(leaf)))
                  for path, leaf in zip(paths, leaves)]
    else:
        prefix = spec.value(tree) if spec.form == "params" else spec.value
        labels = _labels_from_prefix_tree(owner, spec.what, prefix, paths, leaves, against)
    return paths, leaves, treedef, labels


def check_known_labels(owner: str, labels: list, paths: list, known) -> None:
    """Raise ``ValueError`` for a label with no transformation, naming it and a path that has it."""
    for label, path in zip(labels, paths):
        if label is not NOT_OWNED and label not in known:
            raise ValueError(f"{owner}: the label {label!r} (of params leaf {format_path(path)}) "
                             f"has no transformation; the transformations are labelled "
                             f"{', '.join(sorted(map(repr, known)))}")


def check_booleans(owner: str, mask: list, paths: list) -> list:
    """The mask as Python booleans (``NOT_OWNED`` kept); ``ValueError`` naming the path of a value
    that is not one."""
    out = []
    for value, path in zip(mask, paths):
        if value is NOT_OWNED:
            out.append(value)
            continue
        if not isinstance(value, (bool, int)) or value not in (0, 1):
            raise ValueError(f"{owner}: the mask at {format_path(path)} is {value!r}; a mask "
                             "holds booleans (True: the leaf is selected)")
        out.append(bool(value))
    return out


def keep_only(treedef, leaves: list, keep: list):
    """The tree of ``flatten_positions`` with every leaf not kept replaced by ``MaskedNode()``
    (placeholders stay as they are)."""
    return treedef.unflatten([leaf if k or _is_placeholder(leaf) else MaskedNode()
                              for leaf, k in zip(leaves, keep)])


def mask_extras(extra: dict, treedef, keep: list, enabled: bool) -> dict:
    """Mask the keyword extras that have the updates' structure (Optax's
    ``mask_compatible_extra_args``); leave the others as they are."""
    if not enabled:
        return extra
    masked = {}
    for key, value in extra.items():
        _, leaves, value_treedef = flatten_positions(value)
        masked[key] = keep_only(treedef, leaves, keep) if value_treedef == treedef else value
    return masked


def put_owned(owner: str, out: list, tree, keep: list) -> None:
    """Write the leaves of ``tree``, produced by a transformation given ``keep_only(...)``, into
    ``out`` at the kept positions."""
    positions = [i for i, k in enumerate(keep) if k]
    _, leaves, _ = flatten_leaves(tree)
    if len(leaves) != len(positions):
        raise ValueError(f"{owner}: the wrapped transformation returned {len(leaves)} leaves for "
                         f"the {len(positions)} leaves it was given; it must keep the updates' "
                         "structure")
    for i, leaf in zip(positions, leaves):
        out[i] = leaf


class Shown:
    """A label or mask specification as ``repr`` shows it in an optimizer's description."""

    def __init__(self, spec):
        if _is_function(spec):
            self.text = f"<function {getattr(spec, '__name__', type(spec).__name__)}>"
        else:
            text = repr(spec)
            self.text = text if len(text) <= 60 else f"<{type(spec).__name__} prefix tree>"

    def __repr__(self):
        return self.text
