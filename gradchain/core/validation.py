"""Construction-time checks of hyperparameters and trees, with one message policy.

Hyperparameters: a plain number or concrete 0-d array is checked against its allowed range when
the transformation is built, and a ``ValueError`` names the function, the argument, the value and
the range (NaN and ±inf are out of range; booleans, strings, lists and arrays of several elements
are refused). A traced value (under ``jax.grad``, ``vmap``, ``jit``) or a schedule passes
unchecked. Arguments that must be transformations are checked by name.

The function named is the public one the user called (``adam``, not the ``ema`` inside it;
``core/public.py``): every message here starts with ``called_name(owner)``, which is ``owner``
only when no public constructor is running. A checked range is recorded in the running call, and
the transformation it returns keeps it (``tx.ranges``) for ``set_hyperparams``.

Trees and states: ``update`` checks (at trace time, so at no run-time cost) that the incoming
updates have the structure of the state they meet, naming the paths where they differ (written
as ``core/paths.py`` writes every place in a tree: ``encoder/0/kernel``), and that the state is
the one its ``init`` makes.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import NamedTuple, Optional
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.paths import format_path, path_keys
from gradchain.core.public import called_name, record_range


def is_concrete_number(value) -> bool:
    """True for a value whose numbers can be read now: not a tracer, not a schedule."""
    return not callable(value) and not isinstance(value, jax.core.Tracer)


class Range(NamedTuple):
    """An allowed interval: ``[low, high]``, a bound excluded by ``low_open``/``high_open``,
    ``None`` for an unbounded side; ``allow_inf``: ±inf is in it (a threshold where infinity
    means "off")."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    allow_inf: bool = False

    def check(self, owner: str, name: str, value) -> None:
        check_range(owner, name, value, self.low, self.high, low_open=self.low_open,
                    high_open=self.high_open, allow_inf=self.allow_inf)

    def __str__(self):
        return _interval(*self)

    @staticmethod
    def intersection(ranges) -> "Range":
        """The values that lie in every one of ``ranges`` (all finite values for none)."""
        ranges = list(ranges)
        low, high, low_open, high_open = None, None, False, False
        allow_inf = bool(ranges) and all(r.allow_inf for r in ranges)
        for r in ranges:
            if r.low is not None and (low is None or r.low > low
                                      or (r.low == low and r.low_open)):
                low, low_open = r.low, r.low_open
            if r.high is not None and (high is None or r.high < high
                                       or (r.high == high and r.high_open)):
                high, high_open = r.high, r.high_open
        return Range(low, high, low_open, high_open, allow_inf)


def check_range(owner: str, name: str, value, low=None, high=None, *,
                low_open: bool = False, high_open: bool = False,
                allow_inf: bool = False, record: bool = True) -> None:
    """Refuse a concrete ``value`` that is not a real scalar in ``[low, high]``.

    ``low_open``/``high_open`` exclude the bound; ``None`` leaves that side unbounded. Refused,
    naming ``owner`` and ``name``: a value that is no number (a string, None, a boolean, a list:
    ``TypeError``), an array of more than one element (no hyperparameter has a per-element form:
    ``ValueError``), NaN, ±inf unless ``allow_inf`` (for thresholds where infinity means "off"),
    and a number out of range (``ValueError``). Traced values and schedules pass unchecked.
    The range is recorded for argument ``name`` of the running public call (see the module
    docstring), unless ``record`` is False: a check of a value derived from an argument, not of
    the hyperparameter of that name in the state.

    Args:
      owner: the function doing the check (errors name the public function running).
      name: the argument's name.
      value: the value to check.
      low: the lower bound, or None.
      high: the upper bound, or None.
      low_open: exclude ``low``.
      high_open: exclude ``high``.
      allow_inf: accept ±inf.
      record: record the range for ``set_hyperparams``.

    Returns:
      None; raises ``TypeError`` or ``ValueError`` for a refused value.
    """
    if record:
        record_range(name, Range(low, high, low_open, high_open, allow_inf))
    owner = called_name(owner)
    if not is_concrete_number(value):
        return
    _check_real_scalar(owner, name, value)
    number = float(np.asarray(value))
    ok = not math.isnan(number) and (allow_inf or math.isfinite(number))
    if low is not None:
        ok = ok and ((number > low) if low_open else (number >= low))
    if high is not None:
        ok = ok and ((number < high) if high_open else (number <= high))
    if not ok:
        raise ValueError(f"{owner}: {name}={value!r} is out of range; expected {name} in "
                         f"{_interval(low, high, low_open, high_open, allow_inf)}")


def _check_real_scalar(owner: str, name: str, value) -> None:
    """``TypeError`` for what is no real number, ``ValueError`` for an array of several."""
    expected = "a real number, a 0-d array, a traced value or a schedule"
    if isinstance(value, (list, tuple, dict, set, str, bytes)) or value is None:
        raise TypeError(f"{owner}: {name} must be {expected}, got {type(value).__name__} "
                        f"{value!r}")
    try:
        dtype = np.asarray(value).dtype
    except (TypeError, ValueError):
        dtype = np.dtype(object)
    if jnp.issubdtype(dtype, jnp.bool_):
        raise TypeError(f"{owner}: {name} must be {expected}, got the boolean {value!r}")
    if not any(jnp.issubdtype(dtype, kind) for kind in (jnp.floating, jnp.integer)):
        raise TypeError(f"{owner}: {name} must be {expected}, got {value!r}")
    if np.ndim(value) != 0:
        raise ValueError(f"{owner}: {name} must be a scalar, got an array of shape "
                         f"{np.shape(value)}; a hyperparameter has one value for all leaves")


def _interval(low, high, low_open, high_open, allow_inf=False) -> str:
    left = "(" if low_open or (low is None and not allow_inf) else "["
    right = ")" if high_open or (high is None and not allow_inf) else "]"
    lo = "-inf" if low is None else _fmt(low)
    hi = "inf" if high is None else _fmt(high)
    return f"{left}{lo}, {hi}{right}"


def _fmt(x) -> str:
    return str(int(x)) if float(x).is_integer() and math.isfinite(x) else repr(x)


def concrete_nonzero(value) -> bool:
    """True for a number or array known now to have a non-zero entry (a tracer or a schedule
    is not known: False)."""
    return is_concrete_number(value) and bool(np.any(np.asarray(value) != 0))


def check_choice(owner: str, name: str, value, choices) -> str:
    """``value`` if it is one of the strings ``choices``, else ``ValueError`` listing them."""
    owner = called_name(owner)
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{owner}: {name}={value!r} is not one of {allowed}")
    return value


def check_steps(owner: str, name: str, value, low: int = 1, *, what: str = "steps") -> int:
    """``value`` as an ``int`` >= ``low``: ``TypeError`` for a value that is not a number,
    ``ValueError`` for one that is not whole or is below ``low``, naming owner and argument.

    Python, NumPy and concrete JAX integers are accepted; booleans are not. For sizes known
    when something is built (a number of steps, ``what`` the messages count).
    """
    owner = called_name(owner)
    if isinstance(value, (bool, np.bool_)) or isinstance(value, jax.core.Tracer):
        raise TypeError(f"{owner}: {name}={value!r} is not an integer; expected a whole number "
                        f"of {what} in [{low}, inf) known when it is built")
    try:
        steps = operator.index(value)
    except TypeError:
        if isinstance(value, numbers.Real) or (
                isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0
                and jnp.issubdtype(value.dtype, jnp.floating)):
            raise ValueError(f"{owner}: {name}={value!r} is not an integer; expected a whole "
                             f"number of {what} in [{low}, inf)") from None
        raise TypeError(f"{owner}: {name}={value!r} is not an integer; expected a whole number "
                        f"of {what} in [{low}, inf)") from None
    if steps < low:
        raise ValueError(f"{owner}: {name}={value!r} is out of range; expected {name} in "
                         f"[{low}, inf)")
    return steps


def check_whole_number(owner: str, name: str, value, low: int) -> None:
    """``check_range(value >= low)`` for a hyperparameter that must also be a whole number (a
    count of micro-batches, a sync period): kept in the state, so traced values pass."""
    check_range(owner, name, value, low)
    if is_concrete_number(value) and not float(np.asarray(value)).is_integer():
        raise ValueError(f"{called_name(owner)}: {name}={value!r} is not an integer; expected a "
                         f"whole number in [{low}, inf)")


def check_not_schedule(owner: str, name: str, value) -> None:
    """Refuse a schedule where a value is used once (an initial value of the state)."""
    if callable(value):
        owner = called_name(owner)
        raise TypeError(f"{owner}: {name} is the state's starting value, used once at init; it "
                        f"cannot be a schedule, got {value!r}")


def check_floating_dtype(owner: str, name: str, dtype) -> None:
    """Refuse a state or compute dtype option (``mu_dtype``, ``accumulator_dtype``...) that
    is not floating point, real or complex (``None`` passes: it means "the params' dtype"; so
    does a ``quantized(...)`` format, which decodes to float32)."""
    from gradchain.core.quantized import Quantized  # that module uses this one's checks

    if dtype is not None and not isinstance(dtype, Quantized) and not jnp.issubdtype(
            dtype, jnp.inexact):
        owner = called_name(owner)
        raise TypeError(f"{owner}: {name}={jnp.dtype(dtype)} is not a floating-point dtype "
                        "(real or complex)")


def check_transformations(owner: str, transformations) -> None:
    """Refuse an argument that is not a gradient transformation, naming the argument.

    ``transformations`` maps each argument's name to its value (``{"inner": inner}``); a
    sequence is the variadic ``*transformations`` and names ``transformations[i]``. A function
    (``lookahead(gc.adam)``) is told to be called.
    """
    if not isinstance(transformations, Mapping):
        transformations = {f"transformations[{i}]": tx for i, tx in enumerate(transformations)}
    for name, tx in transformations.items():
        if hasattr(tx, "init") and hasattr(tx, "update"):
            continue
        owner = called_name(owner)
        hint = (f"; it is a function: call it to build the transformation, e.g. "
                f"{getattr(tx, '__name__', 'it')}(...)" if callable(tx) else "")
        raise TypeError(f"{owner}: {name} is {tx!r}, not a gradient transformation (an object "
                        f"with init and update){hint}")


class StateMismatchError(TypeError):
    """``update`` was given a state that its ``init`` did not make (``None``, or another
    optimizer's state). ``owners`` runs from the outermost transformation to the part that found
    the mismatch, so the message names the optimizer the user built; ``part`` is the state that
    part was given and ``at`` its path in the outermost state seen (``format_path``'s format),
    when it can be found there."""

    def __init__(self, owners: list, got: str, expected: str, part=None, at=None):
        self.owners, self.got, self.expected = owners, got, expected
        self.part, self.at = part, at
        outer = owners[0]
        advice = (f"pass the state that {outer}'s init returned (another optimizer's state or "
                  "None does not fit)")
        if len(owners) == 1:
            message = (f"{outer}: update was given {got} as its state, where {outer}'s init "
                       f"returns {expected}; {advice}")
        else:
            where = f" (at {format_path(at)})" if at is not None else ""
            message = (f"{outer}: update was given a state that {outer}'s init did not make: "
                       f"the part for {' > '.join(owners[1:])}{where} is {got}, where "
                       f"{expected} is expected; {advice}")
        super().__init__(message)

    def within(self, owner: str, state) -> "StateMismatchError":
        """The same mismatch, seen from the transformation ``owner`` that holds this one in its
        ``state``."""
        at = _location(state, self.part)
        return StateMismatchError([owner, *self.owners], self.got, self.expected, self.part,
                                  self.at if at is None else at)

    def renamed(self, owner: str) -> "StateMismatchError":
        """The same mismatch, with the outermost transformation called ``owner``."""
        return StateMismatchError([owner, *self.owners[1:]], self.got, self.expected,
                                  self.part, self.at)


def _location(tree, part):
    """The keys that lead from ``tree`` to the very object ``part`` (a state inside it), or
    None; ``None`` and ``()`` are not looked for (each is one object, found everywhere)."""
    if part is None or (type(part) is tuple and not part):
        return None
    if tree is part:
        return ()
    if isinstance(tree, tuple):
        items = zip(getattr(tree, "_fields", range(len(tree))), tree)
    elif isinstance(tree, (list, dict)):
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    else:
        return None
    for key, value in items:
        found = _location(value, part)
        if found is not None:
            return (key, *found)
    return None


def check_state(owner: str, state, expected: type, size: int | None = None) -> None:
    """Refuse a state that ``owner``'s ``init`` did not make: not exactly of type ``expected``
    (``None``, another optimizer's state), or, for a tuple, not of ``size`` parts. Raises
    ``StateMismatchError``, a ``TypeError``."""
    if type(state) is expected and (size is None or len(state) == size):
        return
    if state is None:
        got = "None"
    elif type(state) is tuple:
        got = f"a tuple of {len(state)} states"
    elif isinstance(state, (jax.Array, np.ndarray)):
        got = "an array"
    else:
        got = _article(type(state).__name__)
    want = f"a tuple of {size} states" if size is not None else _article(expected.__name__)
    raise StateMismatchError([owner], got, want, state)


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def check_floating(owner: str, tree, what: str = "params") -> None:
    """Refuse leaves that are not floating point (real or complex), naming the first such tree
    path."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"{owner}: {what} leaf at {format_path(path)} has dtype {dtype}; gradchain "
                "optimizes floating-point leaves, real or complex, only: an integer or boolean "
                "leaf (a step counter, token ids, a mask) has no gradient step; leave it out of "
                "the optimizer with freeze_where or masked")


def check_real(owner: str, tree, what: str, reason: str) -> None:
    """Refuse complex leaves where ``owner`` has no complex form, naming the first such tree
    path and ``reason`` (why, and what to use instead)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = jnp.result_type(leaf)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(f"{owner}: {what} leaf at {format_path(path)} has dtype {dtype}; "
                            f"{owner} does not support complex leaves: {reason}")


def check_same_structure(owner: str, updates, reference, what: str = "optimizer state") -> None:
    """Raise ``ValueError`` naming the paths where ``updates`` and ``reference`` differ: the first
    leaf missing from the updates and the first leaf only the updates have (a renamed key has
    both), or, with the same paths, the containers that differ."""
    if jax.tree.structure(updates) == jax.tree.structure(reference):
        return
    raise ValueError(f"{owner}: the updates do not match the {what}: "
                     f"{structure_difference(updates, reference, what)}")


def structure_difference(updates, reference, what: str, is_leaf=None) -> str:
    """Where two trees differ, in words: the paths only one of them has (the first of each and
    how many), else their containers."""
    got = [path_keys(p) for p, _ in jax.tree_util.tree_flatten_with_path(updates, is_leaf)[0]]
    want = [path_keys(p) for p, _ in
            jax.tree_util.tree_flatten_with_path(reference, is_leaf)[0]]
    got_set, want_set = set(got), set(want)
    missing = [format_path(w) for w in want if w not in got_set]
    extra = [format_path(g) for g in got if g not in want_set]
    parts = []
    if missing:
        parts.append(f"{_first(missing)} is in the {what} but not in the updates")
    if extra:
        parts.append(f"{_first(extra)} is in the updates but not in the {what}")
    if parts:
        return "; ".join(parts)
    return (f"same paths, different containers ({jax.tree.structure(updates, is_leaf)} vs "
            f"{jax.tree.structure(reference, is_leaf)})")


def _first(paths: list) -> str:
    more = len(paths) - 1
    return paths[0] + (f" (and {more} more)" if more else "")


def check_same_shapes(owner: str, updates, reference, what: str = "optimizer state") -> None:
    """Raise ``ValueError`` naming the first leaf whose shape differs from the reference's
    (trees already known to match; ``None`` leaves are skipped), instead of broadcasting it."""
    for (path, u), r in zip(jax.tree_util.tree_flatten_with_path(updates, is_leaf=is_none)[0],
                            jax.tree.leaves(reference, is_leaf=is_none)):
        if u is not None and r is not None and jnp.shape(u) != jnp.shape(r):
            raise ValueError(f"{owner}: updates leaf at {format_path(path)} has shape "
                             f"{jnp.shape(u)}, the {what} has {jnp.shape(r)}")


def is_none(x) -> bool:
    return x is None
