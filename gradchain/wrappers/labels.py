"""Which leaves a wrapper acts on: labels and masks, from a path function or a prefix tree.

Every wrapper that gives different leaves different treatment (``param_groups``, ``apply_where``,
``freeze_where`` and their Optax-named forms) resolves one label per parameter leaf here, at trace
time (labels are static Python values, never arrays computed at run time). A label is given as:

- a function of the leaf's tree path, ``fn(path, leaf) -> label``, where ``path`` is a tuple of
  plain keys (``("encoder", "layers", 0, "kernel")``: dict keys and attribute names as strings,
  sequence indices as ints) and ``leaf`` the array; it needs no copy of the params' structure;
- a prefix tree: a tree whose leaves are labels and whose nodes are matched to the params' nodes
  *by key*, not by container type, so a plain dict of labels fits Flax's ``nnx.State``, a
  ``FrozenDict`` or a custom pytree with the same keys. A label at an inner node covers its whole
  subtree;
- Optax's form: a function of the whole params tree returning such a prefix tree.

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

import sys
from typing import Any, NamedTuple

import jax


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


def _plain_key(key):
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return getattr(key, attribute)
    return key


def format_path(path: tuple) -> str:
    """``("a", 0, "kernel")`` as ``a/0/kernel`` (``<root>`` for the empty path)."""
    return "/".join(str(k) for k in path) or "<root>"


def flatten_leaves(tree):
    """``(paths, leaves, treedef)``: the leaves (a Flax Variable counts as one), with their paths
    as tuples of plain keys."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_variable)
    paths = [tuple(_plain_key(k) for k in path) for path, _ in flat]
    return paths, [leaf for _, leaf in flat], treedef


def children_by_key(node) -> dict:
    """The immediate children of a pytree node, keyed by plain key (dict key, attribute, index)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    return {_plain_key(path[0]): child for path, child in flat}


def _is_label(node) -> bool:
    return node is None or jax.tree_util.all_leaves([node])


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


def _labels_from_prefix_tree(owner: str, what: str, prefix, paths: list, against: str) -> list:
    labels, used = [], set()
    for path in paths:
        node = unwrap(prefix)
        depth = 0
        while not _is_label(node) and depth < len(path):
            children = children_by_key(node)
            key = path[depth]
            if key not in children:
                raise ValueError(
                    f"{owner}: the {what} tree does not match the {against}: it has no entry "
                    f"{key!r} at {format_path(path[:depth])} ({against} leaf "
                    f"{format_path(path)}); "
                    f"its keys there are {sorted(map(str, children))}")
            depth += 1
            node = unwrap(children[key])
        if not _is_label(node):
            raise ValueError(f"{owner}: the {what} tree does not match the {against}: it goes "
                             f"deeper than the {against} leaf {format_path(path)}")
        used.add(path[:depth])
        labels.append(_static(owner, what, path, node))
    _check_all_used(owner, what, prefix, used, against)
    return labels


def _check_all_used(owner: str, what: str, prefix, used: set, against: str) -> None:
    """Refuse a prefix-tree entry that matches no leaf (a typo would silently do nothing)."""

    def walk(node, path):
        node = unwrap(node)
        if _is_label(node):
            if path not in used:
                raise ValueError(f"{owner}: the {what} tree does not match the {against}: its "
                                 f"entry at {format_path(path)} matches no {against} leaf")
            return
        for key, child in children_by_key(node).items():
            walk(child, path + (key,))

    walk(prefix, ())


def leaf_labels(owner: str, spec: Any, tree, *, what: str = "labels",
                path_function: bool = True, against: str = "params"):
    """One static label per leaf of ``tree``: ``(paths, leaves, treedef, labels)``.

    ``spec`` is a prefix tree or a function: of ``(path, leaf)`` when ``path_function``,
    else of the whole tree (Optax's form). Raises ``ValueError`` naming the first path where a
    prefix tree and ``tree`` (called ``against`` in messages: "params" or "updates") disagree.
    """
    paths, leaves, treedef = flatten_leaves(tree)
    if callable(spec) and path_function:
        labels = [_static(owner, what, path, spec(path, unwrap(leaf)))
                  for path, leaf in zip(paths, leaves)]
    else:
        prefix = spec(tree) if callable(spec) else spec
        labels = _labels_from_prefix_tree(owner, what, prefix, paths, against)
    return paths, leaves, treedef, labels


def check_known_labels(owner: str, labels: list, paths: list, known) -> None:
    """Raise ``ValueError`` for a label with no transformation, naming it and a path that has it."""
    for label, path in zip(labels, paths):
        if label not in known:
            raise ValueError(f"{owner}: the label {label!r} (of params leaf {format_path(path)}) "
                             f"has no transformation; the transformations are labelled "
                             f"{', '.join(sorted(map(repr, known)))}")


def check_booleans(owner: str, mask: list, paths: list) -> list:
    """The mask as Python booleans; ``ValueError`` naming the path of a value that is not one."""
    out = []
    for value, path in zip(mask, paths):
        if not isinstance(value, (bool, int)) or value not in (0, 1):
            raise ValueError(f"{owner}: the mask at {format_path(path)} is {value!r}; a mask "
                             "holds booleans (True: the leaf is selected)")
        out.append(bool(value))
    return out


def keep_only(treedef, leaves: list, keep: list):
    """The tree with every leaf not kept replaced by ``MaskedNode()``."""
    return treedef.unflatten([leaf if k else MaskedNode() for leaf, k in zip(leaves, keep)])


def mask_extras(extra: dict, treedef, keep: list, enabled: bool) -> dict:
    """Mask the keyword extras that have the updates' structure (Optax's
    ``mask_compatible_extra_args``); leave the others as they are."""
    if not enabled:
        return extra
    masked = {}
    for key, value in extra.items():
        _, leaves, value_treedef = flatten_leaves(value)
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
        if callable(spec):
            self.text = f"<function {getattr(spec, '__name__', type(spec).__name__)}>"
        else:
            text = repr(spec)
            self.text = text if len(text) <= 60 else f"<{type(spec).__name__} prefix tree>"

    def __repr__(self):
        return self.text
