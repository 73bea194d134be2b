"""The scope of shared statistics: one update call of the outermost gradchain transformation.

``gradchain.kit.share(name, tx)`` publishes ``tx``'s output under ``name``; later parts of the
same optimizer read it (``shared(name)``, ``reads=(name,)``). Publishing and reading happen while
the update is traced (Python), so the scope is a context variable: the outermost public
transformation's update opens a fresh one (``core/transformation.py``) and closes it when it
returns; nothing outlives the call, and the compiled step holds each statistic once.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Optional

_SCOPE: contextvars.ContextVar[Optional[dict]] = contextvars.ContextVar(
    "gradchain_shared_statistics", default=None)


@contextlib.contextmanager
def shared_scope():
    """A fresh scope for the duration of one outermost update."""
    token = _SCOPE.set({})
    try:
        yield
    finally:
        _SCOPE.reset(token)


def publish(owner: str, name: str, value: Any) -> None:
    """Make ``value`` readable under ``name`` for the rest of this update."""
    scope = _SCOPE.get()
    if name in scope:
        raise ValueError(f"{owner}: a statistic named {name!r} is already shared in this "
                         "optimizer; give each share(...) its own name")
    scope[name] = value


def read(owner: str, name: str) -> Any:
    """The value shared under ``name`` earlier in this update."""
    scope = _SCOPE.get() or {}
    if name not in scope:
        known = sorted(scope) or "none"
        raise ValueError(f"{owner}: no statistic named {name!r} has been shared before this "
                         f"part of the optimizer (shared so far: {known}); put "
                         f"share({name!r}, ...) earlier in the same chain or branch")
    return scope[name]
