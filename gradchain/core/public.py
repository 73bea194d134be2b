"""What a public constructor's call leaves behind: its name in errors, its ranges, its value.

Every public function that builds a transformation or a schedule is decorated with ``public`` (and
so are ``set_hyperparams`` and ``lr_finder``, which check arguments too). While it runs, the call
is on a stack held in a context variable (per thread and per task; it is emptied again when the
call returns or raises), which gives three things:

- **the name in errors**: a refusal anywhere inside names the outermost public call, the
  function the user wrote (``adam``, not the ``ema`` inside it); a primitive called directly
  names itself. ``called_name(owner)`` is what ``core/validation.py`` prints;
- **ranges**: ``check_range`` records each checked argument's allowed range in the innermost
  call; the transformation that call returns keeps them by name (``tx.ranges``), and
  ``set_hyperparams`` checks a new value against the ranges of the hyperparameter's name in the
  transformation whose state holds it;
- **value**: the transformation (or schedule) returned remembers the function and its bound
  arguments (``tx.call``), so two built with equal arguments compare and hash equal
  (``core/equality.py``): one static ``jit`` argument, one compilation.

Tracing is Python, so all of this works the same under ``jit``, ``vmap`` and ``grad``.
"""

from __future__ import annotations

import contextvars
import functools
import types
from typing import Callable

from gradchain.core.equality import BuiltSchedule, Call

_CALLS: contextvars.ContextVar[tuple] = contextvars.ContextVar("gradchain_public_calls",
                                                              default=())


class _Call:
    """One running public call: the name it reports under and the ranges checked in it."""

    __slots__ = ("name", "ranges")

    def __init__(self, name: str):
        self.name = name
        self.ranges: dict = {}


def called_name(owner: str) -> str:
    """The public function the user called (the outermost running one), else ``owner``."""
    calls = _CALLS.get()
    return calls[0].name if calls else owner


def record_range(name: str, allowed) -> None:
    """Note that argument ``name`` of the innermost running public call must lie in
    ``allowed`` (a ``core.validation.Range``)."""
    calls = _CALLS.get()
    if calls:
        ranges = calls[-1].ranges
        if allowed not in ranges.get(name, ()):
            ranges[name] = ranges.get(name, ()) + (allowed,)


def public(function: Callable = None, *, name: str = None):
    """Decorate a public constructor (see the module docstring); ``name`` is what errors call
    it (default: its ``__name__``).

    Args:
      function: the constructor (``@public``), or None when ``name`` is given
        (``@public(name=...)``).
      name: the name errors give it.

    Returns:
      The decorated constructor (or, with ``function=None``, the decorator).
    """
    if function is None:
        return functools.partial(public, name=name)
    shown = name or function.__name__

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        running = _Call(shown)
        token = _CALLS.set(_CALLS.get() + (running,))
        try:
            result = function(*args, **kwargs)
        finally:
            _CALLS.reset(token)
        if hasattr(result, "built_by"):  # a GradientTransformation
            return result.built_by(Call(wrapper, args, kwargs), running.ranges, shown)
        if isinstance(result, types.FunctionType) and not any(
                result is a for a in (*args, *kwargs.values())):
            return BuiltSchedule(result, Call(wrapper, args, kwargs))
        return result

    return wrapper
