"""Construction-time checks of hyperparameters and trees, with one message policy.

Hyperparameters: a plain number or concrete array is checked against its allowed range when the
transformation is built, and a ``ValueError`` names the function, the argument, the value and the
range. A traced value (under ``jax.grad``, ``vmap``, ``jit``) or a schedule passes unchecked.

Trees: ``update`` checks (at trace time, so at no run-time cost) that the incoming updates have
the structure of the state they meet, and names the first tree path where they differ.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete_number(value) -> bool:
    """True for a value whose numbers can be read now: not a tracer, not a schedule."""
    return not callable(value) and not isinstance(value, jax.core.Tracer)


def check_range(owner: str, name: str, value, low=None, high=None, *,
                low_open: bool = False, high_open: bool = False) -> None:
    """Raise ``ValueError`` if a concrete ``value`` lies outside ``[low, high]``.

    ``low_open``/``high_open`` exclude the bound. ``None`` leaves that side unbounded.
    """
    if not is_concrete_number(value):
        return
    try:
        dtype = np.asarray(value).dtype
    except (TypeError, ValueError):
        dtype = np.dtype(object)
    if not any(jnp.issubdtype(dtype, kind) for kind in (jnp.floating, jnp.integer, jnp.bool_)):
        raise TypeError(f"{owner}: {name} must be a number, an array or a schedule, "
                        f"got {value!r}")
    array = np.asarray(value, dtype=np.float64)
    ok = ~np.isnan(array)
    if low is not None:
        ok &= (array > low) if low_open else (array >= low)
    if high is not None:
        ok &= (array < high) if high_open else (array <= high)
    if not np.all(ok):
        raise ValueError(f"{owner}: {name}={value!r} is out of range; "
                         f"expected {name} in {_interval(low, high, low_open, high_open)}")


def _interval(low, high, low_open, high_open) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else _fmt(low)
    hi = "inf" if high is None else _fmt(high)
    return f"{left}{lo}, {hi}{right}"


def _fmt(x) -> str:
    return str(int(x)) if float(x).is_integer() and math.isfinite(x) else repr(x)


def concrete_nonzero(value) -> bool:
    """True for a number or array known now to have a non-zero entry (a tracer or a schedule
    is not known: False)."""
    return is_concrete_number(value) and bool(np.any(np.asarray(value) != 0))


def check_not_schedule(owner: str, name: str, value) -> None:
    """Refuse a schedule where a value is used once (an initial value of the state)."""
    if callable(value):
        raise TypeError(f"{owner}: {name} is the state's starting value, used once at init; it "
                        f"cannot be a schedule, got {value!r}")


def check_floating_dtype(owner: str, name: str, dtype) -> None:
    """Refuse a state or compute dtype option (``mu_dtype``, ``accumulator_dtype``...) that
    is not floating point (``None`` passes: it means "the params' dtype"; so does a
    ``quantized(...)`` format, which decodes to float32)."""
    from gradchain.core.quantized import Quantized  # that module uses this one's checks

    if dtype is not None and not isinstance(dtype, Quantized) and not jnp.issubdtype(
            dtype, jnp.floating):
        raise TypeError(f"{owner}: {name}={jnp.dtype(dtype)} is not a floating-point dtype")


def check_transformations(owner: str, transformations) -> None:
    """Refuse an argument that is not a gradient transformation, naming its position."""
    for i, tx in enumerate(transformations):
        if not (hasattr(tx, "init") and hasattr(tx, "update")):
            raise TypeError(f"{owner}: argument {i} is {tx!r}, not a gradient transformation "
                            "(an object with init and update)")


def check_floating(owner: str, tree, what: str = "params") -> None:
    """Refuse leaves that are not floating point, naming the first such tree path."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{owner}: {what} leaf at {_path(path)} has dtype {dtype}; gradchain "
                "optimizes floating-point leaves only (freeze or mask integer leaves)")


def check_same_structure(owner: str, updates, reference, what: str = "optimizer state") -> None:
    """Raise ``ValueError`` naming the first path where ``updates`` and ``reference`` differ."""
    if jax.tree.structure(updates) == jax.tree.structure(reference):
        return
    got = [_path(p) for p, _ in jax.tree_util.tree_flatten_with_path(updates)[0]]
    want = [_path(p) for p, _ in jax.tree_util.tree_flatten_with_path(reference)[0]]
    for g, w in zip(got, want):
        if g != w:
            raise ValueError(f"{owner}: the updates do not match the {what}: first mismatch "
                             f"at {g} in the updates, where the {what} has {w}")
    if len(got) != len(want):
        extra = got[len(want)] if len(got) > len(want) else want[len(got)]
        side = "updates" if len(got) > len(want) else what
        raise ValueError(f"{owner}: the updates do not match the {what}: path {extra} is "
                         f"only in the {side} ({len(got)} leaves vs {len(want)})")
    raise ValueError(f"{owner}: the updates do not match the {what}: same paths, different "
                     f"containers ({jax.tree.structure(updates)} vs "
                     f"{jax.tree.structure(reference)})")


def check_same_shapes(owner: str, updates, reference, what: str = "optimizer state") -> None:
    """Raise ``ValueError`` naming the first leaf whose shape differs from the reference's
    (trees already known to match; ``None`` leaves are skipped), instead of broadcasting it."""
    for (path, u), r in zip(jax.tree_util.tree_flatten_with_path(updates, is_leaf=_is_none)[0],
                            jax.tree.leaves(reference, is_leaf=_is_none)):
        if u is not None and r is not None and jnp.shape(u) != jnp.shape(r):
            raise ValueError(f"{owner}: updates leaf at {_path(path)} has shape {jnp.shape(u)}, "
                             f"the {what} has {jnp.shape(r)}")


def _is_none(x) -> bool:
    return x is None


def _path(path) -> str:
    return jax.tree_util.keystr(path) or "<root>"
