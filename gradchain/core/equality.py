"""Equality by value of what a public constructor built.

A transformation or schedule built by a public constructor remembers the call,
``Call(function, arguments)`` (``core/public.py``). Two compare equal, and hash equally, when
they come from the same function with arguments that are equal by value, so equal optimizers
are one static ``jit`` argument (one compilation). An argument's value is
``value_key(argument)``:

- a Python number, string, ``None``: itself, with its type (``1`` and ``1.0`` differ);
- a concrete array (NumPy or JAX): dtype, shape, weak type and contents;
- something built by a public constructor (a transformation, a schedule): itself, compared
  this same way;
- a container (tuple, list, dict, any pytree: a mask tree, a list of transformations): its tree
  structure and the keys of its leaves;
- anything else (a user's function, a traced value, an Optax transformation's functions): the
  object itself, by identity.

A transformation that no public constructor returned (``GradientTransformation(init, update)``)
compares as the tuple ``(init, update)``, by identity of its functions.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable, NamedTuple

import jax
import numpy as np


class Call(NamedTuple):
    """How something was built: ``function(*args, **kwargs)``."""

    function: Callable
    args: tuple
    kwargs: dict

    def arguments(self) -> dict:
        """``{name: value}`` for every parameter of ``function``, defaults filled in (so
        ``adam(1e-3)`` and ``adam(1e-3, b1=0.9)`` are the same call)."""
        bound = inspect.signature(self.function).bind(*self.args, **self.kwargs)
        bound.apply_defaults()
        return bound.arguments


class ByIdentity:
    """An object compared and hashed by identity (its own ``==`` may be elementwise)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, ByIdentity) and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


def call_key(built):
    """A hashable key of ``built.call``: equal keys mean equal functions and argument values.

    Computed once per object (a static ``jit`` argument is hashed at every call)."""
    key = built.__dict__.get("_call_key")
    if key is None:
        call = built.call
        key = (ByIdentity(call.function),
               tuple((name, value_key(value)) for name, value in call.arguments().items()))
        built.__dict__["_call_key"] = key
    return key


def value_key(value):
    """A hashable stand-in for ``value`` that compares by value where that is well defined (see
    the module docstring), by identity elsewhere."""
    if isinstance(value, jax.core.Tracer):
        return ByIdentity(value)
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return (type(value), value)
    if isinstance(value, np.dtype):
        return ("dtype", value.str)
    if isinstance(getattr(value, "call", None), Call):
        return value
    if isinstance(value, (np.ndarray, np.generic)) or (
            isinstance(value, jax.Array) and value.is_fully_addressable):
        array = np.asarray(value)
        return ("array", array.dtype.str, array.shape, bool(getattr(value, "weak_type", False)),
                array.tobytes())
    leaves, treedef = jax.tree_util.tree_flatten(value, is_leaf=lambda x: x is not value
                                                 and _is_own_leaf(x))
    if treedef.num_nodes == 1 and treedef.num_leaves == 1:
        return ByIdentity(value)
    return ("tree", treedef, tuple(value_key(leaf) for leaf in leaves))


def _is_own_leaf(x) -> bool:
    return isinstance(getattr(x, "call", None), Call)


class BuiltSchedule:
    """A schedule returned by a public factory: it calls the factory's function, and compares
    and hashes by the factory and its arguments (two ``cosine_decay_schedule(1e-3, 100)`` are
    equal)."""

    def __init__(self, schedule: Callable, call: Call):
        functools.update_wrapper(self, schedule)
        self.call = call

    def __call__(self, step):
        return self.__wrapped__(step)

    def __eq__(self, other):
        if not isinstance(other, BuiltSchedule):
            return NotImplemented
        return call_key(self) == call_key(other)

    def __hash__(self):
        return hash(call_key(self))

    def __repr__(self):
        return f"<schedule {self.__name__}>"
