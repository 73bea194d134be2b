"""Fetching a named piece of an optimizer's state without knowing how it is nested.

A state is a tree of NamedTuples (one per primitive or wrapper) inside tuples and dicts (chains,
parameter groups). ``find_state(state, "ema", hyperparam="b2", path=("l1", "kernel"))`` finds the
NamedTuple field called ``ema`` whose primitive has the hyperparameter ``b2`` (Adam's second
moment) and returns its entry for the params leaf ``l1/kernel``; ``find_state(state,
"notfinite_count")`` returns the skip counter of ``skip_non_finite``. ``describe_state`` lists
the names there are.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from gradchain.core.paths import format_path, key_matches, split_path
from gradchain.wrappers.labels import MaskedNode, children_by_key, flatten_leaves, unwrap


def is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def plain_state(state):
    """``state`` with each Flax ``Variable`` replaced by the array it holds (``nnx.Optimizer``
    keeps its ``opt_state`` as the optimizer state with every array wrapped in one)."""
    _, leaves, treedef = flatten_leaves(state)
    return treedef.unflatten([unwrap(x) for x in leaves])


def state_fields(state, location: tuple = ()) -> Iterator[tuple[tuple, Any, Any]]:
    """Every NamedTuple field in ``state``: ``(location, value, owner)``.

    ``location`` is the tuple of field names, indices and dict keys leading to the field
    (written ``inner_states/decay/1/ema`` by ``format_path``) and ``owner`` the NamedTuple
    holding it. The ``hyperparams`` dicts are fields but are not searched inside.
    """
    if is_namedtuple(state):
        for name, value in zip(state._fields, state):
            yield location + (name,), value, state
            if name != "hyperparams":
                yield from state_fields(value, location + (name,))
    elif isinstance(state, dict):
        for key, value in state.items():
            yield from state_fields(value, location + (key,))
    elif isinstance(state, (tuple, list)):
        for i, value in enumerate(state):
            yield from state_fields(value, location + (i,))


def find_states(state, field: str, *, hyperparam: Optional[str] = None,
                within: Any = None) -> list[tuple[str, Any]]:
    """Every NamedTuple field called ``field`` in ``state``, as ``(where, value)`` pairs, with
    ``where`` its path from ``state`` (``inner_states/decay/1/branches/0/ema``, the format
    of ``gradchain.core.paths``).

    Optional filters: ``hyperparam`` keeps the fields of primitives that have that
    hyperparameter (``"b2"`` picks Adam's second moment out of its two ``ema`` fields);
    ``within`` keeps those whose location contains that key (a parameter group's label, a field
    name such as ``"inner_state"``). ``state`` may be ``nnx.Optimizer``'s ``opt_state``.

    Args:
      state: an optimizer state (``nnx.Optimizer``'s ``opt_state`` too).
      field: the field's name (``"ema"``, ``"buffer"``, ``"notfinite_count"``).
      hyperparam: keep the fields of primitives that have this hyperparameter, or None.
      within: keep the fields whose location contains this key, or None.

    Returns:
      A list of ``(where, value)``, in the state's order.
    """
    return _matching(plain_state(state), field, hyperparam, within)


def _matching(state, field, hyperparam, within) -> list[tuple[str, Any]]:
    return [(format_path(location), value) for location, value, owner in state_fields(state)
            if location[-1] == field
            and (hyperparam is None or hyperparam in (getattr(owner, "hyperparams", None) or {}))
            and (within is None or within in location[:-1])]


def _at_path(value, path):
    path = split_path(path)
    node = value
    for depth, wanted in enumerate(path):
        children = children_by_key(node)
        key = next((k for k in children if k == wanted), None)
        if key is None:
            key = next((k for k in children if key_matches(wanted, k)), None)
        if key is None:
            raise KeyError(f"find_state: no params path {format_path(path[:depth + 1])} in this "
                           f"state; the keys at {format_path(path[:depth])} are "
                           f"{sorted(map(str, children))}")
        node = children[key]
    if isinstance(node, MaskedNode):
        raise KeyError(f"find_state: the params leaf {format_path(path)} is not owned by this "
                       "transformation (masked out, frozen or in another group)")
    return node


def find_state(state, field: str, *, path=None, hyperparam: Optional[str] = None,
               within: Any = None):
    """The one NamedTuple field called ``field`` in ``state`` (filters: see ``find_states``).

    ``path`` (a tuple of params keys, or ``"a/b/kernel"``) then selects one params leaf or
    subtree of a per-leaf statistic; fields that do not own that leaf (another parameter
    group's) are passed over, so the second moment of one layer needs no group name.

    Raises:
      KeyError: no field matches (the message lists the field names there are), or ``path``
        is not in it (listing the keys there) or names a leaf no matching field owns.
      ValueError: several fields match; the message lists where they are.

    Args:
      state: an optimizer state (``nnx.Optimizer``'s ``opt_state`` too).
      field: the field's name (``"ema"``, ``"buffer"``, ``"notfinite_count"``).
      path: a params leaf or subtree to select in a per-leaf statistic (a tuple of keys or
        ``"a/b/kernel"``), or None for the whole field.
      hyperparam: keep the fields of primitives that have this hyperparameter, or None.
      within: keep the fields whose location contains this key, or None.

    Returns:
      The field's value (a params-shaped tree for a per-leaf statistic), or the part of it at
      ``path``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.adam(0.1)
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> state = tx.init(params)
      >>> _, state = tx.update({"w": jnp.array([1.0, -2.0])}, state, params)
      >>> gc.find_state(state, "ema", hyperparam="b2", path="w").tolist()  # Adam's v
      [0.001, 0.004]
    """
    state = plain_state(state)
    found = _matching(state, field, hyperparam, within)
    if not found:
        names = sorted({str(location[-1]) for location, _, _ in state_fields(state)})
        raise KeyError(f"find_state: no state field {field!r} matches; the fields are {names}")
    if path is not None:
        owned = []
        for where, value in found:
            try:
                owned.append((where, _at_path(value, path)))
            except KeyError:
                if len(found) == 1:
                    raise
        if not owned:
            _at_path(found[0][1], path)
        found = owned
    if len(found) > 1:
        places = ", ".join(where for where, _ in found)
        raise ValueError(f"find_state: {len(found)} state fields called {field!r} match "
                         f"({places}); choose one with hyperparam= or within=")
    return found[0][1]
