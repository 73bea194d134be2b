"""The gradient-transformation protocol.

A transformation is a pair of pure functions::

    init(params) -> state
    update(updates, state, params=None, **extra) -> (updates, state)

the same protocol Optax uses, so a gradchain transformation works in Flax's ``TrainState`` and
``nnx.Optimizer`` and mixes with Optax transformations in either direction. ``extra`` carries
keyword values such as ``value=loss``; a transformation takes what it needs and ignores the rest.

When Optax is installed, ``GradientTransformation`` is a subclass of Optax's
``GradientTransformationExtraArgs`` (itself a ``NamedTuple`` of ``init`` and ``update``), so
``optax.chain``, ``optax.inject_hyperparams``, ``nnx.Optimizer`` and the other Optax wrappers
forward keyword extras to gradchain parts instead of dropping them. gradchain does not need
Optax: without it the base is a plain ``NamedTuple`` of the same two fields.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import jax

Params = Any
Updates = Any
State = Any
Schedule = Callable[[jax.Array], jax.Array]


class _Protocol(NamedTuple):
    init: Callable[[Params], State]
    update: Callable[..., tuple[Updates, State]]


try:
    from optax import GradientTransformationExtraArgs as _Base
except ImportError:
    _Base = _Protocol


class GradientTransformation(_Base):
    """An ``(init, update)`` pair, plus a description used only for display.

    It unpacks as a 2-tuple exactly like Optax's ``GradientTransformation``. The keyword
    arguments ``name``, ``hyperparams`` and ``children`` describe how it was built (shown by
    ``repr``); they take no part in the computation.
    """

    def __new__(cls, init, update, *, name=None, hyperparams=None, children=()):
        self = super().__new__(cls, init, update)
        self.name = name or getattr(update, "__qualname__", "transformation")
        self.hyperparams = dict(hyperparams or {})
        self.children = tuple(children)
        return self

    def __repr__(self):
        return "\n".join(describe_lines(self))


def describe_lines(tx, indent: int = 0) -> list[str]:
    """Lines of an indented tree: each transformation with its hyperparameters."""
    name = getattr(tx, "name", type(tx).__name__)
    hyper = getattr(tx, "hyperparams", {})
    args = ", ".join(f"{k}={_show(v)}" for k, v in hyper.items())
    lines = [" " * indent + f"{name}({args})"]
    for child in getattr(tx, "children", ()):
        lines.extend(describe_lines(child, indent + 2))
    return lines


def _show(value) -> str:
    if callable(value):
        return f"<schedule {getattr(value, '__name__', type(value).__name__)}>"
    if isinstance(value, jax.core.Tracer):
        return "<traced>"
    return repr(value)


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


def identity() -> GradientTransformation:
    """Pass the updates through unchanged: ``u -> u``."""

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del params, extra
        return updates, state

    return GradientTransformation(init, update, name="identity")


def accepts_extra(update: Callable) -> bool:
    """Whether ``update`` takes arbitrary keyword arguments (``**extra``).

    Optax's plain transformations take ``(updates, state, params)`` only; combinators use this
    to pass extra keywords just to the transformations that accept them.
    """
    try:
        parameters = inspect.signature(update).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def call_update(tx, updates, state, params, extra: dict):
    """Call ``tx.update``, forwarding ``extra`` only if it accepts keyword extras."""
    if extra and accepts_extra(tx.update):
        return tx.update(updates, state, params, **extra)
    return tx.update(updates, state, params)
