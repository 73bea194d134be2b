"""Readable descriptions of an optimizer (its tree of primitives) and of its state.

``describe(tx)`` is what ``print(tx)`` shows: one line per primitive with its hyperparameters,
indented under the combinator or wrapper that holds it. ``describe_state(state)`` shows the state
the same way: each NamedTuple with its fields, scalars with their values, per-leaf statistics
summarised by their leaves' shapes and bytes, so the names ``find_state`` looks for are in view.
"""

from __future__ import annotations

import jax
import numpy as np

from gradchain.core.hyperparams import GIVEN
from gradchain.core.transformation import describe_lines
from gradchain.introspection.find import is_namedtuple, plain_state
from gradchain.core.paths import format_path
from gradchain.wrappers.labels import flatten_leaves, unwrap


def describe(tx) -> str:
    """The tree of primitives of ``tx`` with their hyperparameters (``repr(tx)``).

    Args:
      tx: a gradient transformation.

    Returns:
      A multi-line string: each primitive or wrapper with its hyperparameters, indented under
      the one that holds it.
    """
    return "\n".join(describe_lines(tx))


def state_bytes(state) -> int:
    """Bytes held by the arrays of ``state`` (also works on ``jax.eval_shape(tx.init, params)``).

    Args:
      state: an optimizer state, or its shapes (``jax.ShapeDtypeStruct`` leaves).

    Returns:
      The number of bytes, an ``int``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.adam(1e-3)
      >>> small, large = jnp.zeros(1000, jnp.float32), jnp.zeros(2000, jnp.float32)
      >>> gc.state_bytes(tx.init(large)) - gc.state_bytes(tx.init(small))  # two float32 moments
      8000
    """
    return sum(int(np.prod(np.shape(x))) * np.dtype(x.dtype).itemsize
               for x in jax.tree.leaves(state) if hasattr(x, "dtype"))


def _holds_state(x) -> bool:
    """Whether ``x`` holds a NamedTuple state (not counting ``MaskedNode`` placeholders)."""
    return any(is_namedtuple(node) and node._fields for node in
               jax.tree.leaves(x, is_leaf=lambda n: is_namedtuple(n) and n is not x))


def _array_text(x) -> str:
    x = unwrap(x)
    text = f"{np.dtype(x.dtype).name}{list(np.shape(x))}"
    if np.shape(x) == () and not isinstance(x, jax.core.Tracer) and hasattr(x, "item"):
        value = x.item()
        text += f" = {value:.6g}" if isinstance(value, float) else f" = {value!r}"
    return text


def _summary(tree) -> str:
    if tree is None:
        return "None"
    paths, leaves, _ = flatten_leaves(tree)
    if not leaves:
        return "(no arrays)"
    if paths == [()]:
        return _array_text(leaves[0])
    shown = ", ".join(f"{format_path(path)}: {_array_text(x)}"
                      for path, x in zip(paths[:4], leaves))
    more = f", … {len(leaves) - 4} more" if len(leaves) > 4 else ""
    return f"{len(leaves)} arrays, {state_bytes(tree)} B {{{shown}{more}}}"


def _state_lines(node, label: str, indent: int) -> list[str]:
    pad = " " * indent
    if is_namedtuple(node):
        lines = [f"{pad}{label}{type(node).__name__}"]
        for field, value in zip(node._fields, node):
            if field == "hyperparams" and isinstance(value, dict):
                values = ", ".join(f"{k}={_array_text(v)}" for k, v in value.items()
                                   if k != GIVEN)
                lines.append(f"{pad}  hyperparams: {{{values}}}")
            else:
                lines.extend(_state_lines(value, f"{field}: ", indent + 2))
        return lines
    if isinstance(node, (tuple, list, dict)) and _holds_state(node):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        lines = [f"{pad}{label}{type(node).__name__}"]
        for key, value in items:
            lines.extend(_state_lines(value, f"{key}: ", indent + 2))
        return lines
    return [f"{pad}{label}{_summary(node)}"]


def describe_state(state) -> str:
    """The state as an indented tree of NamedTuples and their fields (``state`` may be
    ``nnx.Optimizer``'s ``opt_state``).

    Args:
      state: an optimizer state (``nnx.Optimizer``'s ``opt_state`` too).

    Returns:
      A multi-line string: each NamedTuple with its fields, arrays as ``dtype[shape]`` (and the
      value of scalars), per-leaf statistics as their number of arrays and bytes.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> state = gc.sgd(0.1, momentum=0.9).init({"w": jnp.zeros(3, jnp.float32)})
      >>> print(gc.describe_state(state))
      tuple
        0: EmptyState
        1: MomentumState
          count: int32[] = 0
          buffer: 1 arrays, 12 B {w: float32[3]}
          hyperparams: {...momentum=float...[] = 0.9}
        2: ScaleState
          count: None
          hyperparams: {learning_rate=float...[] = 0.1}
    """
    return "\n".join(_state_lines(plain_state(state), "", 0))
