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

import contextvars
import functools
import inspect
import re
from typing import Any, Callable, NamedTuple

import jax

from gradchain.core.equality import Call, call_key
from gradchain.core.public import public
from gradchain.core.scope import shared_scope
from gradchain.core.validation import StateMismatchError, check_state

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
    """An ``(init, update)`` pair, plus a description of how it was built.

    It unpacks as a 2-tuple exactly like Optax's ``GradientTransformation``; where Optax is
    installed it is an ``optax.GradientTransformationExtraArgs``, so ``optax.chain`` and Optax's
    wrappers pass keyword extras (``value=loss``) through to it. The keyword
    arguments ``name``, ``hyperparams`` and ``children`` are for display only: they describe how
    it was built (shown by ``repr``), and nothing reads them to compute or to decide anything
    (which hyperparameters follow a schedule is told by the state itself,
    ``core/hyperparams.py``).

    ``parts`` says what its state is made of: ``(location, tx)`` pairs, one for each
    transformation whose state it holds, ``location`` the tuple of keys (field names, indices,
    dict keys) from its state to that part's state: ``((0,), first), ((1,), second)`` for a
    chain, ``(("inner_state",), inner)`` for a wrapper. ``set_hyperparams`` walks it alongside
    the state to check a new value against the ranges of the part that owns it (and of the
    parts around it). A transformation built without it (from two functions) still works, and
    its scheduled hyperparameters are still refused; the ranges of the parts it hides are not
    known, and an entry there must lie in every range recorded for its name in the parts that
    are.

    A public constructor adds (see ``core/public.py``):

    - ``call``: the constructor and its arguments. Two transformations with a ``call`` are
      equal, and hash equally, when their calls are equal by value (``core/equality.py``), so
      equal optimizers are one static ``jit`` argument; without one (built directly from two
      functions) they compare as the tuple ``(init, update)``;
    - ``ranges``: ``{argument: (Range, ...)}``, the ranges checked in the call that built it;
      ``set_hyperparams`` checks a new value of a hyperparameter in this transformation's own
      state against the ranges of its name.

    ``state_type``, the class of the state ``init`` returns (and ``state_size``, its number of
    parts for a plain tuple), makes ``update`` refuse any other state (``None``, another
    optimizer's) with a ``TypeError`` naming this transformation and the part where the state
    does not fit, checked when ``update`` is traced (no cost in the compiled step).
    """

    def __new__(cls, init, update, *, name=None, hyperparams=None, children=(), parts=(),
                state_type=None, state_size=None):
        if state_type is not None:
            update = _checking_state(update, state_type, state_size, lambda: self.name)
        self = super().__new__(cls, init, update)
        self.name = name or getattr(update, "__qualname__", "transformation")
        self.hyperparams = dict(hyperparams or {})
        self.children = tuple(children)
        self.parts = tuple((tuple(location), part) for location, part in parts)
        self.call = None
        self.ranges = {}
        return self

    def built_by(self, call: Call, ranges: dict, name: str) -> "GradientTransformation":
        """A copy (same ``init``, same description) that records ``call`` and adds ``ranges``,
        whose ``update`` names ``name``, the public function that built it, in the errors it
        raises (``_naming_errors``); the original is left as it was (a constructor may return
        its argument)."""
        built = tuple.__new__(type(self), (self.init, _naming_errors(self.update, name)))
        built.__dict__.update(self.__dict__)
        built.__dict__.pop("_call_key", None)
        built.call = call
        built.ranges = {**self.ranges,
                        **{k: tuple(dict.fromkeys(self.ranges.get(k, ()) + r))
                           for k, r in ranges.items()}}
        return built

    def __eq__(self, other):
        if self.call is None:
            return getattr(other, "call", None) is None and tuple.__eq__(self, other)
        return (type(self) is type(other) and other.call is not None
                and call_key(self) == call_key(other))

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return tuple.__hash__(self) if self.call is None else hash(call_key(self))

    def __repr__(self):
        return "\n".join(describe_lines(self))


_UPDATING = contextvars.ContextVar("gradchain_updating", default=False)
_OWNED_MESSAGE = re.compile(r"[A-Za-z_][\w.]*: ")


def _naming_errors(update: Callable, name: str) -> Callable:
    """``update`` whose refusals start with ``name`` when it is the outermost update running.

    The checks inside (tree structure and shapes, dtypes, the state) name the piece that found
    the problem (``ema: the updates do not match ...``); the user called ``adam``. So the
    outermost public transformation's update puts its own name first (``adam: ema: ...``),
    and a state that does not fit is reported under that name.
    Only gradchain's own messages (``owner: ...``, plain ``ValueError``/``TypeError``) are
    renamed; inner updates, running inside an outer one, leave them to it. Trace-time only.
    The outermost update also opens the scope of shared statistics (``core/scope.py``).
    """

    @functools.wraps(update)
    def named(*args, **kwargs):
        if _UPDATING.get():
            return update(*args, **kwargs)
        token = _UPDATING.set(True)
        try:
            with shared_scope():
                return update(*args, **kwargs)
        except StateMismatchError as mismatch:
            if mismatch.owners[0] == name:
                raise
            # The outermost check is this transformation's own, under its internal name.
            raise mismatch.renamed(name) from None
        except (ValueError, TypeError) as error:
            message = str(error)
            if (type(error) not in (ValueError, TypeError) or message.startswith(f"{name}:")
                    or not _OWNED_MESSAGE.match(message)):
                raise
            raise type(error)(f"{name}: {message}") from error
        finally:
            _UPDATING.reset(token)

    return named


def _checking_state(update: Callable, state_type: type, state_size, owner: Callable[[], str]
                    ) -> Callable:
    """``update`` that first checks the state it is given (``check_state``) and names itself in
    a mismatch found by the transformations it holds."""

    @functools.wraps(update)
    def checked(updates, state, params=None, **extra):
        check_state(owner(), state, state_type, state_size)
        try:
            return update(updates, state, params, **extra)
        except StateMismatchError as mismatch:
            raise mismatch.within(owner(), state) from None

    return checked


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


@public
def identity() -> GradientTransformation:
    """Pass the updates through unchanged: ``u -> u``.

    Returns:
      A stateless ``GradientTransformation`` (state ``EmptyState()``).
    """

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra):
        del params, extra
        return updates, state

    return GradientTransformation(init, update, name="identity", state_type=EmptyState)


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
