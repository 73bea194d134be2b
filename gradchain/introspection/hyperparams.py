"""Read and change the hyperparameters of a built optimizer between steps, without recompiling.

Every primitive keeps its numeric hyperparameters in the ``hyperparams`` dict of its state
(``gradchain.core.hyperparams``), so the optimizer state *is* the set of hyperparameters in
force. These functions address them by path, or by name:

    >>> import jax.numpy as jnp
    >>> import gradchain as gc
    >>> tx = gc.adam(1e-3)
    >>> state = tx.init({"w": jnp.zeros(3)})
    >>> float(gc.get_hyperparam(state, "b1"))
    0.9
    >>> state = gc.set_hyperparams(tx, state, learning_rate=1e-4, b1=0.95)
    >>> float(gc.get_hyperparam(state, "learning_rate"))
    0.0001

A path lists the indices and state fields from the outer state inwards, then the name: part
``1`` of the chain, its ``branches``, branch ``1``, part ``1``, ``b2`` (the one format of every
place in a tree, ``gradchain.core.paths``). An *address* is a name, or a name under a path
prefix: ``"learning_rate"``, ``"1/b2"`` (every ``b2`` inside part 1), ``"1/branches/1/1/b2"``.
It selects every hyperparameter with that name under that prefix:

- one match: that one;
- several holding the same value: they are one tied hyperparameter (SWATS' ``b1`` lives in
  its EMA, its folded bias correction and its SGD phase's momentum; a composition ties them by
  giving them one name, ``hyperparam_name``) and are read and set together;
- several holding different values: ``ValueError`` listing them (give a longer prefix);
- none: ``KeyError`` listing the paths there are (as ``gradchain.find_state`` does).

A new value is cast to the stored dtype, broadcast to the stored shape (a scalar fills a
``pmap``-replicated entry) and placed like the old one, so the compiled step is reused: no
recompilation. ``set_hyperparams`` refuses a hyperparameter that follows a schedule (it is
recomputed at every step, so a value set from outside would silently be overwritten); the state
tells which do (a scheduled value has no constructor record, ``core/hyperparams.py``), so this
holds however the transformation was wrapped or described. It takes the transformation too, for
the ranges its constructors allow (found through ``tx.parts``). Both work inside ``jit`` as well
(on traced states several matches cannot be compared and are set together).

A value set in the state stays in force until the optimizer's code changes it: the constructor's
value wins only when it differs from the one the state last saw (``gradchain.core.hyperparams``;
``constructor_changes`` lists such values before the next update). The records of those
constructor values (``hyperparams["_given"]``) are not hyperparameters and are not listed.
``nnx.Optimizer``'s ``opt_state`` (arrays wrapped in Flax Variables) is accepted as it is.

Compared with Optax's ``inject_hyperparams``, which exposes the arguments of one outer function
and recompiles for a new array value, this reaches every hyperparameter of every primitive
inside nested chains, branches and wrappers. Hyperparameters found inside an Optax
``inject_hyperparams`` state are listed and can be set; whether they are scheduled there cannot
be told (nor in a state made by hand, without the records).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.hyperparams import GIVEN, scale_name, scheduled_keys
from gradchain.core.paths import format_path, plain_key, split_path
from gradchain.core.public import public
from gradchain.core.validation import Range
from gradchain.introspection.find import is_namedtuple, plain_state
from gradchain.wrappers.labels import children_by_key, flatten_leaves, unwrap

Path = tuple[str, ...]

_FIELD = "hyperparams"


def get_hyperparams(state) -> dict[str, jax.Array]:
    """Every hyperparameter in ``state``, as ``{path: value}`` in the state's order.

    A scheduled hyperparameter shows the value used at the latest update (at ``init``: its
    value at step 0), so this is what to log.

    Args:
      state: an optimizer state (``nnx.Optimizer``'s ``opt_state`` too).

    Returns:
      ``{path: value}``, each value a scalar array (or the array given).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> state = gc.adam(1e-3).init({"w": jnp.zeros(3)})
      >>> sorted({path.split("/")[-1] for path in gc.get_hyperparams(state)})
      ['b1', 'b2', 'eps', 'eps_root', 'learning_rate']
    """
    return {format_path(path): value for path, value in _entries(plain_state(state)).items()}


def get_hyperparam(state, address: str) -> jax.Array:
    """The value of the hyperparameter at ``address`` (a name, or a name under a path prefix).

    Raises ``KeyError`` if nothing matches, ``ValueError`` if several matches hold different
    values.

    Args:
      state: an optimizer state (``nnx.Optimizer``'s ``opt_state`` too).
      address: a name (``"learning_rate"``) or a name under a path prefix (``"1/b1"``).

    Returns:
      The value, an array.
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
            changes[format_path(path)] = (stored[path], value)
    return changes


@public
def set_hyperparams(tx, state, values: Optional[Mapping[str, Any]] = None, /, **named):
    """``state`` with new values for the given hyperparameters; the other entries unchanged.

    Args:
      tx: the transformation ``state`` belongs to (its constructors' ranges check the values).
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
      ValueError: an address matches several different hyperparameters, or a scheduled one
        (one the state keeps no constructor record of); a value outside the range the
        constructor allows for that hyperparameter (recorded in ``tx`` when it was built,
        ``tx.ranges``; a traced value passes unchecked); a value whose shape cannot fill the
        stored one.
      TypeError: a value that is a function (a schedule is fixed when the optimizer is built).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.sgd(0.1, momentum=0.9)
      >>> state = tx.init({"w": jnp.zeros(3)})
      >>> state = gc.set_hyperparams(tx, state, learning_rate=0.01, momentum=0.5)
      >>> float(gc.get_hyperparam(state, "learning_rate")), float(gc.get_hyperparam(state, "momentum"))
      (0.01, 0.5)
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
    scheduled = _scheduled(state)
    ranges = _ranges(tx, state)
    new_values: dict[Path, Any] = {}
    for address, value in requests.items():
        matches = _resolve("set_hyperparams", entries, address)
        for path in matches:
            if path in scheduled:
                scale = path[:-1] + (scale_name(path[-1]),)
                hint = (f" To scale it at run time, set {format_path(scale)!r} (1 at first)."
                        if scale in entries else "")
                raise ValueError(
                    f"set_hyperparams: {format_path(path)!r} follows a schedule, which sets it "
                    "at every update; a value set from outside would be overwritten. Give the "
                    "optimizer a number or an array for a hyperparameter you want to change at "
                    f"run time.{hint}")
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
    """A JAX key path as the strings ``format_path`` joins, without the ``hyperparams`` field
    itself."""
    return tuple(str(plain_key(k)) for k in key_path
                 if not (isinstance(k, jax.tree_util.GetAttrKey) and k.name == _FIELD))


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
    if not isinstance(address, str) or not split_path(address):
        raise ValueError(f"{owner}: an address is a non-empty string such as 'learning_rate' "
                         f"or '1/b1', got {address!r}")
    *prefix, name = split_path(address)
    matches = [p for p in entries if p[-1] == name and list(p[:len(prefix)]) == prefix]
    if not matches:
        known = ", ".join(repr(format_path(p)) for p in entries) or "none"
        raise KeyError(f"{owner}: no hyperparameter matches {address!r}; the state has: "
                       f"{known}")
    values = [entries[p] for p in matches]
    if not all_equal(values):
        listed = ", ".join(f"{format_path(p)}={np.asarray(v).tolist()!r}"
                           for p, v in zip(matches, values))
        raise ValueError(f"{owner}: {address!r} is ambiguous: it matches {len(matches)} "
                         f"hyperparameters holding different values ({listed}); give a "
                         "path prefix that selects one, e.g. "
                         f"{format_path(matches[0])!r}")
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


def _scheduled(state) -> set[Path]:
    """The entries of ``state`` that its update fills from a schedule (``scheduled_keys``: told
    by the state, whatever transformation holds it)."""
    flat = jax.tree_util.tree_flatten_with_path(
        state, is_leaf=lambda x: isinstance(x, dict) and GIVEN in x)[0]
    return {_components(kp) + (str(name),) for kp, node in flat
            if isinstance(node, dict) and kp and isinstance(kp[-1], jax.tree_util.GetAttrKey)
            and kp[-1].name == _FIELD for name in scheduled_keys(node)}


def _ranges(tx, state) -> dict[Path, tuple]:
    """The allowed ranges (``Range``) of each entry of ``state``: those recorded for its name in
    the part of ``tx`` that owns it and in every part that holds that one (``adadelta`` refuses
    ``eps=0`` for the ``eps`` of the primitives it is made of, which alone would allow it).

    The parts are found through ``tx.parts`` (``core/transformation.py``), walked alongside the
    state. An entry the walk does not reach (inside a transformation built without ``parts``)
    must lie in every range recorded for its name in the parts it reaches.
    """
    found: dict[Path, tuple] = {}
    everywhere: dict[str, tuple] = {}

    def walk(part, node, path: Path, above: dict):
        recorded = getattr(part, "ranges", None) or {}
        for name, allowed in recorded.items():
            everywhere[name] = everywhere.get(name, ()) + tuple(allowed)
        own = getattr(node, _FIELD, None) if is_namedtuple(node) else None
        for name in own if isinstance(own, dict) else ():
            found[path + (str(name),)] = above.get(name, ()) + tuple(recorded.get(name, ()))
        below = {name: above.get(name, ()) + tuple(recorded.get(name, ()))
                 for name in {*above, *recorded}}
        for location, inner in getattr(part, "parts", ()) or ():
            at = _at(node, location)
            if at is not None:
                walk(inner, at, path + tuple(str(k) for k in location), below)

    walk(tx, state, (), {})
    return {path: found.get(path, everywhere.get(path[-1], ())) for path in _entries(state)}


def _at(node, location):
    """The node at ``location`` (plain keys) below ``node``, or None where there is none."""
    for key in location:
        children = {} if jax.tree_util.all_leaves([node]) else children_by_key(node)
        if key not in children:
            return None
        node = children[key]
    return node
