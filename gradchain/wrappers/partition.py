"""Parameter groups: a different transformation for each labelled part of the params.

``param_groups({"decay": adamw(...), "no_decay": adam(...)}, labels)`` gives every leaf one label
and sends it through that label's transformation only; the outputs are put back together leaf by
leaf. Each group's state holds arrays for the leaves the group owns and nothing for the others
(they are ``MaskedNode()`` placeholders there), so its size is that of the group, and it keeps the
params' paths (see ``gradchain.wrappers.labels``). This is torch's ``param_groups`` and Optax's
``partition`` (formerly ``multi_transform``), with the same numbers as Optax's.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping, NamedTuple

from gradchain.core.public import public
from gradchain.core.scope import shared_scope
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_same_structure, check_transformations
from gradchain.wrappers.labels import (Shown, check_known_labels, flatten_positions, keep_only,
                                       leaf_labels, mask_extras, put_owned, read_spec)


class PartitionState(NamedTuple):
    inner_states: dict


def _check_transformations(owner: str, argument: str, transforms) -> dict:
    if not isinstance(transforms, Mapping) or not transforms:
        raise ValueError(f"{owner}: {argument} must be a non-empty mapping from labels to "
                         f"gradient transformations, got {transforms!r}")
    check_transformations(owner, {f"{argument}[{label!r}]": tx
                                  for label, tx in transforms.items()})
    return dict(transforms)


def _labelled(label, tx) -> GradientTransformation:
    """A display-only copy of ``tx`` whose description starts with its group's label (the
    groups' states are found through ``parts``, not through these)."""
    name = getattr(tx, "name", type(tx).__name__)
    return GradientTransformation(tx.init, tx.update, name=f"[{label!r}] {name}",
                                  hyperparams=getattr(tx, "hyperparams", {}),
                                  children=getattr(tx, "children", ()))


def partition_by_labels(owner: str, transforms: Mapping[Hashable, Any], labels, *,
                        native_form: str, mask_compatible_extra_args: bool = False,
                        argument: str = "transforms") -> GradientTransformation:
    """The implementation shared by ``param_groups`` and Optax's ``partition``. ``native_form``
    is the form (``"path"`` or ``"params"``) a labels function whose signature fits both is
    given. Placeholders (leaves an enclosing wrapper does not own) go to no group."""
    transforms = _check_transformations(owner, argument, transforms)
    spec = read_spec(owner, "labels", labels, native=native_form)

    def split(tree, against):
        paths, leaves, treedef, leaf_label = leaf_labels(owner, spec, tree, against=against)
        check_known_labels(owner, leaf_label, paths, transforms)
        return leaves, treedef, leaf_label

    def init(params):
        leaves, treedef, leaf_label = split(params, "params")
        return PartitionState({
            label: tx.init(keep_only(treedef, leaves, [x == label for x in leaf_label]))
            for label, tx in transforms.items()})

    def update(updates, state, params=None, **extra):
        leaves, treedef, leaf_label = split(updates, "updates")
        if set(state.inner_states) != set(transforms):
            raise ValueError(f"{owner}: the state holds the groups "
                             f"{', '.join(sorted(map(repr, state.inner_states)))}; the "
                             f"transformation has {', '.join(sorted(map(repr, transforms)))}")
        if params is not None:
            check_same_structure(owner, updates, params, "params")
            params_leaves = flatten_positions(params)[1]
        out, new_states = list(leaves), {}
        for label, tx in transforms.items():
            keep = [x == label for x in leaf_label]
            sub_params = None if params is None else keep_only(treedef, params_leaves, keep)
            with shared_scope():  # each group shares its statistics within itself only
                new_updates, new_states[label] = call_update(
                    tx, keep_only(treedef, leaves, keep), state.inner_states[label],
                    sub_params, mask_extras(extra, treedef, keep, mask_compatible_extra_args))
            put_owned(owner, out, new_updates, keep)
        return treedef.unflatten(out), PartitionState(new_states)

    return GradientTransformation(
        init, update, name=owner, hyperparams={"labels": Shown(labels)},
        children=[_labelled(label, tx) for label, tx in transforms.items()],
        parts=[(("inner_states", label), tx) for label, tx in transforms.items()],
        state_type=PartitionState)


@public
def param_groups(groups: Mapping[Hashable, Any], labels) -> GradientTransformation:
    """Send each params leaf through the transformation of its group; leaves own state in their
    group only.

    ``out[leaf] = groups[label(leaf)](updates restricted to that group)[leaf]``.

    Args:
      groups: mapping from a label to a gradient transformation (gradchain's or Optax's).
      labels: ``fn(path, leaf) -> label`` with ``path`` a tuple of plain keys, e.g.
        ``lambda path, leaf: "no_decay" if path[-1] in ("bias", "scale") else "decay"``;
        Optax's ``fn(params) -> prefix tree`` (told apart by the signature; one that fits both
        gets ``(path, leaf)``); or a prefix tree of labels matched to the params by key
        (``{"backbone": "slow", "head": "fast"}`` fits an ``nnx.State`` with those two
        sub-modules).

    Raises:
      ValueError: naming the path where a label tree does not match the params, or a label
        (and a leaf that has it) with no transformation; raised by ``init`` and ``update``
        before any state is computed.

    Returns:
      A ``GradientTransformation`` whose state is ``PartitionState(inner_states)``:
      ``{label: state of that group's transformation}``, each holding ``MaskedNode()`` at the
      leaves of other groups.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"kernel": jnp.array([1.0, 2.0]), "bias": jnp.array([1.0])}
      >>> grads = {"kernel": jnp.array([1.0, 1.0]), "bias": jnp.array([1.0])}
      >>> tx = gc.param_groups({"fast": gc.sgd(1.0), "slow": gc.sgd(0.1)},
      ...                      lambda path, leaf: "slow" if path[-1] == "bias" else "fast")
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> {k: v.tolist() for k, v in updates.items()}
      {'bias': [-0.1], 'kernel': [-1.0, -1.0]}
    """
    return partition_by_labels("param_groups", groups, labels, native_form="path",
                               argument="groups")


@public
def partition(transforms: Mapping[Hashable, Any], param_labels, *,
              mask_compatible_extra_args: bool = False) -> GradientTransformation:
    """Optax's ``partition`` (and ``multi_transform``): the same arguments and numbers.

    ``param_labels`` is a prefix tree of labels or, as in Optax, a function of the whole params
    tree returning one; ``fn(path, leaf) -> label`` is accepted too (told apart by the
    signature; one that fits both gets the params tree, as in Optax). Unlike
    Optax, the prefix tree is matched by key, so a plain dict fits an ``nnx.State``.
    ``mask_compatible_extra_args`` restricts keyword extras that have the updates' structure to
    each group, as in Optax.

    Args:
      transforms: mapping from a label to a gradient transformation.
      param_labels: a prefix tree of labels, ``fn(params)`` returning one, or
        ``fn(path, leaf) -> label``.
      mask_compatible_extra_args: restrict keyword extras that have the updates' structure to
        each group.

    Returns:
      A ``GradientTransformation`` whose state is ``PartitionState(inner_states)``, one state
      per label (see ``param_groups``).
    """
    return partition_by_labels("partition", transforms, param_labels, native_form="params",
                               mask_compatible_extra_args=mask_compatible_extra_args)


multi_transform = partition
