"""Read and change the hyperparameters of a built optimizer between steps, without recompiling.

Every primitive keeps its numeric hyperparameters in the ``hyperparams`` dict of its state
(``gradchain.core.hyperparams``), so the optimizer state *is* the set of hyperparameters in
force. These functions address them by path::

    >>> tx = gc.adam(1e-3)
    >>> state = tx.init(params)
    >>> gc.get_hyperparams(state)
    {'1/branches/0/b1': 0.9, '1/branches/1/1/b2': 0.999, '1/eps': 1e-08, '1/eps_root': 0.0,
     '2/learning_rate': 0.001}
    >>> state = gc.set_hyperparams(tx, state, learning_rate=1e-4, b1=0.95)
    >>> gc.get_hyperparam(state, "learning_rate")
    Array(0.0001, dtype=float64)

A path lists the indices and state fields from the outer state inwards, then the name: part
``1`` of the chain, its ``branches``, branch ``1``, part ``1``, ``b2``. An *address* is a name,
or a name under a path prefix: ``"learning_rate"``, ``"1/b2"`` (every ``b2`` inside part 1),
``"1/branches/1/1/b2"``. It selects every hyperparameter with that name under that prefix:

- one match: that one;
- several holding the same value: they are one tied hyperparameter (SWATS' ``b1`` lives in
  its EMA, its folded bias correction and its SGD phase's momentum; a composition ties them by
  giving them one name, ``hyperparam_name``) and are read and set together;
- several holding different values: ``ValueError`` listing them (give a longer prefix);
- none: ``KeyError`` listing the paths there are (as ``gradchain.find_state`` does).

A new value is cast to the stored dtype, broadcast to the stored shape (a scalar fills a
``pmap``-replicated entry) and placed like the old one, so the compiled step is reused: no
recompilation. ``set_hyperparams`` takes the transformation too, to refuse a hyperparameter
that follows a schedule (it is recomputed at every step, so a value set from outside would
silently be overwritten). Both work inside ``jit`` as well (on traced states several matches
cannot be compared and are set together).

A value set in the state stays in force until the optimizer's code changes it: the constructor's
value wins only when it differs from the one the state last saw (``gradchain.core.hyperparams``;
``constructor_changes`` lists such values before the next update). The records of those
constructor values (``hyperparams["_given"]``) are not hyperparameters and are not listed.
``nnx.Optimizer``'s ``opt_state`` (arrays wrapped in Flax Variables) is accepted as it is.

Compared with Optax's ``inject_hyperparams``, which exposes the arguments of one outer function
and recompiles for a new array value, this reaches every hyperparameter of every primitive
inside nested chains, branches and wrappers. Hyperparameters found inside an Optax
``inject_hyperparams`` state are listed and can be set; whether they are scheduled there cannot
be told.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.hyperparams import GIVEN, scale_name
from gradchain.core.public import public
from gradchain.core.validation import Range
from gradchain.introspection.find import is_namedtuple, plain_state
from gradchain.wrappers.labels import flatten_leaves, unwrap

Path = tuple[str, ...]

_FIELD = "hyperparams"


def get_hyperparams(state) -> dict[str, jax.Array]:
    """Every hyperparameter in ``state``, as ``{path: value}`` in the state's order.

    A scheduled hyperparameter shows the value used at the latest update (at ``init``: its
    value at step 0), so this is what to log.
    """
    return {"/".join(path): value for path, value in _entries(plain_state(state)).items()}


def get_hyperparam(state, address: str) -> jax.Array:
    """The value of the hyperparameter at ``address`` (a name, or a name under a path prefix).

    Raises ``KeyError`` if nothing matches, ``ValueError`` if several matches hold different
    values.
    """
    entries = _entries(plain_state(state))
    matches = _resolve("get_hyperparam", entries, address)
    return entries[matches[0]]


def constructor_changes(tx, state, params) -> dict[str, tuple[jax.Array, jax.Array]]:
    """The constants that ``tx``'s next update takes from its constructor, not from ``state``.

    Policy (``gradchain.core.hyperparams``): the latest change wins. A constant whose value in
    ``tx`` differs from the constructor value ``state`` last saw (``hyperparams["_given"]``)
    replaces the state's value at the next update; any other keeps the state's value. Call
    this after restoring a checkpoint into an optimizer built anew, to see what will change.

    Args:
      tx: the transformation about to update ``state``.
      state: its state (e.g. restored from a checkpoint; ``nnx.Optimizer``'s ``opt_state``
        too).
      params: params of the tree ``state`` belongs to (``tx.init`` is traced on them; only
        the recorded constructor values are computed).

    Returns:
      ``{path: (value in state, constructor's value)}``, empty when nothing will change.
    """
    state = plain_state(state)
    built = jax.jit(lambda p: _records(tx.init(p)))(params)
    recorded, stored = _records(state), _entries(state)
    changes = {}
    for path, value in built.items():
        old = recorded.get(path)
        if old is not None and not np.array_equal(np.asarray(old), np.asarray(value),
                                                  equal_nan=True):
            changes["/".join(path)] = (stored[path], value)
    return changes


@public
def set_hyperparams(tx, state, values: Optional[Mapping[str, Any]] = None, /, **named):
    """``state`` with new values for the given hyperparameters; the other entries unchanged.

    Args:
      tx: the transformation ``state`` belongs to (used to refuse scheduled targets).
      state: its state.
      values: ``{address: value}``, for addresses that are not Python names (``"1/b1"``).
      **named: ``name=value``, e.g. ``learning_rate=1e-4``.

    Returns:
      The new state, with the structure, dtypes, shapes and placement of the old one. Given
      ``nnx.Optimizer``'s ``opt_state`` (Flax Variables), the Variables that hold the targets
      are set in place, as ``nnx`` does, and ``state`` itself is returned: the next
      ``optimizer.update`` uses the new values, without recompiling. Other Variables in a
      state (moments of ``nnx.Param`` params) are kept as they are.

    Raises:
      KeyError: an address matches nothing (the message lists the paths there are).
      ValueError: an address matches several different hyperparameters, or a scheduled one; a
        value outside the range the constructor allows for that hyperparameter (recorded in
        ``tx`` when it was built, ``tx.ranges``; a traced value passes unchecked); a value
        whose shape cannot fill the stored one.
      TypeError: a value that is a function (a schedule is fixed when the optimizer is built).
    """
    requests = {**(values or {}), **named}
    _, leaves, treedef = flatten_leaves(state)
    plain = [unwrap(x) for x in leaves]
    new_leaves = treedef.flatten_up_to(_set(tx, treedef.unflatten(plain), requests))
    kept = []
    for leaf, old, new in zip(leaves, plain, new_leaves):
        if leaf is old:
            kept.append(new)
        else:  # a Flax Variable: set in place, and kept
            if new is not old:
                leaf.set_value(new)
            kept.append(leaf)
    return state if all(k is leaf for k, leaf in zip(kept, leaves)) else treedef.unflatten(kept)


def _set(tx, state, requests: dict):
    entries = _entries(state)
    scheduled = _scheduled(tx, state, ())
    ranges = _ranges(tx, state, ())
    new_values: dict[Path, Any] = {}
    for address, value in requests.items():
        matches = _resolve("set_hyperparams", entries, address)
        for path in matches:
            if path in scheduled:
                scale = path[:-1] + (scale_name(path[-1]),)
                hint = (f" To scale it at run time, set {'/'.join(scale)!r} (1 at first)."
                        if scale in entries else "")
                raise ValueError(
                    f"set_hyperparams: {'/'.join(path)!r} follows a schedule "
                    f"({scheduled[path]}), which sets it at every update; a value set from "
                    "outside would be overwritten. Give the optimizer a number or an array "
                    f"for a hyperparameter you want to change at run time.{hint}")
        if callable(value):
            raise TypeError(f"set_hyperparams: {address}={value!r} is a function; a schedule "
                            "is fixed when the optimizer is built, only values can be set")
        Range.intersection(r for path in matches for r in ranges.get(path, ())).check(
            "set_hyperparams", address, value)
        for path in matches:
            new_values[path] = _like(address, value, entries[path])

    def replace(key_path, leaf):
        return new_values.get(_components(key_path), leaf)

    return jax.tree_util.tree_map_with_path(replace, state)


def _components(key_path) -> Path:
    """A JAX key path as strings, without the ``hyperparams`` field itself."""
    parts = []
    for key in key_path:
        if isinstance(key, jax.tree_util.GetAttrKey):
            if key.name != _FIELD:
                parts.append(key.name)
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
        elif isinstance(key, jax.tree_util.DictKey):
            parts.append(str(key.key))
        else:
            parts.append(str(getattr(key, "key", key)))
    return tuple(parts)


def _is_entry(key_path) -> bool:
    """Whether a leaf's key path ends in ``<...>.hyperparams[name]``."""
    return (len(key_path) >= 2 and isinstance(key_path[-1], jax.tree_util.DictKey)
            and isinstance(key_path[-2], jax.tree_util.GetAttrKey)
            and key_path[-2].name == _FIELD)


def _records(tree) -> dict[Path, Any]:
    """The constructor values recorded in ``tree`` (``hyperparams["_given"][name]``), keyed by
    the path of the hyperparameter they belong to."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_components(kp[:-2] + kp[-1:]): leaf for kp, leaf in flat
            if len(kp) >= 3 and _is_entry(kp[:-1]) and kp[-2].key == GIVEN}


def _entries(tree, prefix: Path = ()) -> dict[Path, Any]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {prefix + _components(kp): leaf for kp, leaf in flat if _is_entry(kp)}


def _resolve(owner: str, entries: dict[Path, Any], address: str) -> list[Path]:
    if not isinstance(address, str) or not address:
        raise ValueError(f"{owner}: an address is a non-empty string such as 'learning_rate' "
                         f"or '1/b1', got {address!r}")
    *prefix, name = address.split("/")
    matches = [p for p in entries if p[-1] == name and list(p[:len(prefix)]) == prefix]
    if not matches:
        known = ", ".join(repr("/".join(p)) for p in entries) or "none"
        raise KeyError(f"{owner}: no hyperparameter matches {address!r}; the state has: "
                       f"{known}")
    values = [entries[p] for p in matches]
    if not all_equal(values):
        listed = ", ".join(f"{'/'.join(p)}={np.asarray(v).tolist()!r}"
                           for p, v in zip(matches, values))
        raise ValueError(f"{owner}: {address!r} is ambiguous: it matches {len(matches)} "
                         f"hyperparameters holding different values ({listed}); give a "
                         "path prefix that selects one, e.g. "
                         f"{'/'.join(matches[0])!r}")
    return matches


def all_equal(values) -> bool:
    """Whether the values of several matches are one value (same shape and numbers, NaN equal
    to NaN); traced values cannot be compared and count as equal."""
    if len(values) < 2 or any(isinstance(v, jax.core.Tracer) for v in values):
        return True
    first = np.asarray(values[0])
    return all(np.shape(v) == first.shape and np.array_equal(np.asarray(v), first,
                                                             equal_nan=True)
               for v in values[1:])


def _like(address: str, value, old):
    """``value`` with the dtype, shape and placement of ``old`` (so the step is reused)."""
    new = jnp.asarray(value, dtype=old.dtype)
    if (getattr(old, "weak_type", False) and not new.ndim
            and old.dtype == jnp.result_type(float) and not isinstance(new, jax.core.Tracer)):
        # A weakly typed scalar (as Optax's inject_hyperparams keeps them) stays weakly typed:
        # jit tells the two apart.
        new = jnp.asarray(float(new))
    if new.shape != old.shape:
        if new.ndim:
            raise ValueError(f"set_hyperparams: {address} has shape {old.shape}; got a value "
                             f"of shape {new.shape}")
        new = jnp.broadcast_to(new, old.shape)
    if isinstance(old, jax.Array) and not isinstance(old, jax.core.Tracer) and old.committed:
        # A committed array (placed explicitly, or a pmap/sharded state) is a different
        # argument to jit than an uncommitted one: mirror the old entry, or the step recompiles.
        new = jax.device_put(new, old.sharding)
    return new


def _scheduled(tx, state, path: Path) -> dict[Path, str]:
    """Entries of ``state`` that ``tx`` (or a part of it) fills from a schedule: path -> name.

    Where the state's layout does not show which part is which, every entry below with a name
    that is scheduled anywhere in ``tx`` counts as scheduled (never the reverse).
    """
    return {p: found[-1] for p, found in _described(tx, state, path, _schedule_of).items()}


def _ranges(tx, state, path: Path) -> dict[Path, tuple]:
    """The allowed ranges (``Range``) of each entry of ``state``: those recorded for its name in
    the part of ``tx`` that owns it and in every part that holds that one (``adadelta`` refuses
    ``eps=0`` for the ``eps`` of the primitives it is made of, which alone would allow it).
    Where the state's layout does not show which part is which, an entry must lie in every range
    recorded for its name anywhere in ``tx``."""
    return {p: sum(found, ()) for p, found in
            _described(tx, state, path, _ranges_of, inherited={}).items()}


def _schedule_of(tx, name):
    spec = (getattr(tx, "hyperparams", None) or {}).get(name)
    return _schedule_name(spec) if callable(spec) else None


def _ranges_of(tx, name):
    return (getattr(tx, "ranges", None) or {}).get(name)


def _described(tx, state, path: Path, describe, inherited=None) -> dict[Path, list]:
    """``{path: [describe(part, name), ...]}`` for the entries of ``state`` that a part of
    ``tx`` describes (``describe`` returns None for nothing to say). With ``inherited`` (a dict,
    ``{}`` at the top), what the parts holding an entry's owner say of its name comes first.

    ``tx``'s description (``hyperparams`` and ``children``) is walked alongside the state: a
    chain's parts are the elements of its tuple state; a wrapper's or a branch's parts are in
    the one field of its state that holds hyperparameters (one part, or a tuple of them). Where
    the state's layout does not show which part is which, an entry below gets what every part
    of ``tx`` says about its name.
    """
    children = tuple(getattr(tx, "children", ()) or ())
    above = inherited or {}
    found: dict[Path, list] = {}
    own = getattr(state, _FIELD, None) if is_namedtuple(state) else None
    if isinstance(own, dict):
        for name in own:
            said = describe(tx, name)
            if said is not None or name in above:
                found[path + (str(name),)] = [*above.get(name, []),
                                              *([] if said is None else [said])]
    if not children:
        return found
    below = None
    if inherited is not None:
        here = _described_names(tx, describe, deep=False)
        below = {name: [*above.get(name, []), *here.get(name, [])]
                 for name in {*above, *here}}
    located = _locate_children(state, children, path)
    if located is not None:
        for child, (child_path, child_state) in zip(children, located):
            found.update(_described(child, child_state, child_path, describe, below))
        return found
    names = _described_names(tx, describe)
    own_paths = {path + (str(name),) for name in (own or {})}
    for entry in _entries(state, path):
        if entry not in own_paths and (entry[-1] in names or entry[-1] in above):
            found[entry] = [*above.get(entry[-1], []), *names.get(entry[-1], [])]
    return found


def _locate_children(state, children, path: Path):
    """``[(path, state)]`` of the parts' states inside ``state``, or None if unclear.

    A dict of states (``param_groups``) is matched to parts whose description names their
    group (``"['label'] ..."``).
    """
    n = len(children)
    if isinstance(state, (tuple, list)) and not is_namedtuple(state):
        return ([(path + (str(i),), s) for i, s in enumerate(state)] if len(state) == n
                else None)
    if not is_namedtuple(state):
        return None
    holders = [f for f in state._fields if f != _FIELD and _entries(getattr(state, f))]
    if not holders:
        return []
    if len(holders) != 1:
        return None
    field = holders[0]
    inner = getattr(state, field)
    if n == 1:
        return [(path + (field,), inner)]
    if isinstance(inner, (tuple, list)) and not is_namedtuple(inner) and len(inner) == n:
        return [(path + (field, str(i)), s) for i, s in enumerate(inner)]
    if isinstance(inner, dict) and len(inner) == n:
        by_label = {f"[{key!r}]": key for key in inner}
        keys = [by_label.get(str(getattr(c, "name", "")).split(" ")[0]) for c in children]
        if None not in keys and len(set(keys)) == n:
            return [(path + (field, str(k)), inner[k]) for k in keys]
    return None


def _described_names(tx, describe, *, deep: bool = True) -> dict[str, list]:
    """``{name: [what describe says, for each part of tx that says something]}``; with
    ``deep=False``, for ``tx`` itself only."""
    names: dict[str, list] = {}
    for name in set(getattr(tx, "hyperparams", None) or {}) | set(
            getattr(tx, "ranges", None) or {}):
        said = describe(tx, name)
        if said is not None:
            names.setdefault(name, []).append(said)
    for child in (getattr(tx, "children", ()) or ()) if deep else ():
        for name, said in _described_names(child, describe).items():
            names.setdefault(name, []).extend(said)
    return names


def _schedule_name(schedule) -> str:
    return getattr(schedule, "__name__", type(schedule).__name__)
