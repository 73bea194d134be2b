"""Resuming an Optax checkpoint with gradchain: an Optax optimizer state as a gradchain state.

``from_optax_state(tx, optax_state, params)`` builds ``tx.init(params)`` and fills in the
statistics and step counts that Optax's state holds, matched by what they are (the Optax state
class and field; in gradchain, the primitive, its hyperparameter names and whether a
``square()`` precedes it), not by where they sit:

- ``ScaleByAdamState``: ``mu`` -> the ``ema`` with ``b1`` (or NAdam's ``nesterov_first_moment``),
  ``nu`` -> the ``ema`` with ``b2``;
- ``ScaleByRmsState`` / ``ScaleByRStdDevState`` (with count or not): ``nu`` -> the ``ema`` after
  ``square()``, ``mu`` (centred) -> the other ``ema``;
- ``TraceState``: ``trace`` -> ``scale_by_momentum``'s ``buffer``;
- every ``count`` (Adam's; RMSProp's with bias correction; a scheduled learning rate's;
  ``inject_hyperparams``') -> every ``count`` the gradchain state keeps (bias corrections,
  momentum, schedules), and NAdam's running product ``Π_t = β1^t``.

So Optax's ``adam``, ``adamw``, ``nadam`` (``adam(nesterov=True)``), ``sgd`` (plain, momentum,
Nesterov) and ``rmsprop`` (plain, centred, bias-corrected, with momentum or Nesterov) convert
into the gradchain optimizer of the same name and arguments, and so do chains around them whose
other members keep no statistics (``optax.chain(optax.clip_by_global_norm(1.0),
optax.adam(lr))`` into ``gc.chain(gc.clip_by_global_norm(1.0), gc.adam(lr))``). The step that
follows equals Optax's next step.

- Flax ``Variable``s (``nnx.Optimizer``'s ``OptVariable``s, ``Param``s in an ``nnx.State``) are
  read as their arrays; the result holds plain arrays.
- Hyperparameters are ``tx``'s: what the constructor was given is in force, whatever Optax's
  state says (``inject_hyperparams``' ``hyperparams`` dict is not read). A state of
  ``optax.inject_hyperparams(optax.adam)(...)`` converts like one of ``optax.adam(...)``; its
  ``count`` counts steps too.
- Optax's plain ``sgd`` and ``rmsprop`` with a constant learning rate keep no step count, while
  gradchain's momentum buffer and schedules do: pass ``step=`` (the number of updates Optax
  has applied, e.g. ``TrainState.step``; under ``MultiSteps``, the inner optimizer's). Given
  where Optax's state has a count too, they must agree.
- ``optax.MultiSteps(opt, k)`` converts into ``gc.MultiSteps(tx, k)`` (or
  ``gc.accumulate_gradients(tx, k, dtype=jnp.float32)``): the micro-batch count, the
  accumulated gradients and the skip state carry over, and ``gradient_step`` is the inner
  optimizer's step count. To drop the accumulation, convert ``optax_state.inner_opt_state``
  into ``tx`` (at ``mini_step == 0`` nothing is lost).
- Refused with ``ValueError`` naming what was found and what was expected: a statistic of another
  algorithm (Lion's, AMSGrad's ``nu_max``, a state class not listed above), a statistic
  ``tx`` keeps that Optax's state lacks or the reverse, two of the same kind (one Adam per
  state), statistics for another params tree, shape or dtype (build ``tx`` with Optax's
  ``mu_dtype``/``accumulator_dtype``), and step counts that disagree.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.combinators.branch import BranchState
from gradchain.core.hyperparams import scheduled_keys
from gradchain.core.paths import format_path
from gradchain.introspection.find import is_namedtuple, plain_state
from gradchain.moments.ema import EmaState
from gradchain.moments.momentum import MomentumState
from gradchain.moments.nesterov import NesterovMomentState
from gradchain.moments.square import square
from gradchain.wrappers.accumulate import MultiStepsState
from gradchain.wrappers.labels import flatten_leaves
from gradchain.wrappers.masked import MaskedState

NAME = "from_optax_state"

# Optax's state classes, by name (optax is not a dependency of gradchain, and some of these
# are private there): {field: kind of statistic}; "count" is the step count.
_OPTAX_FIELDS = {
    "ScaleByAdamState": {"count": "count", "mu": "Adam's first moment",
                         "nu": "Adam's second moment"},
    "ScaleByRmsState": {"nu": "RMSProp's second moment"},
    "ScaleByRmsWithCountState": {"count": "count", "nu": "RMSProp's second moment"},
    "ScaleByRStdDevState": {"mu": "centred RMSProp's mean", "nu": "RMSProp's second moment"},
    "ScaleByRStdDevWithCountState": {"count": "count", "mu": "centred RMSProp's mean",
                                     "nu": "RMSProp's second moment"},
    "TraceState": {"trace": "momentum buffer"},
    "ScaleByScheduleState": {"count": "count"},
    "WrappedScheduleState": {"count": "count"},
}
_OPTAX_WRAPPERS = {  # class name -> the fields holding states to look into
    "InjectHyperparamsState": ("inner_state",),
    "InjectStatefulHyperparamsState": ("hyperparams_states", "inner_state"),
    "MaskedState": ("inner_state",),
}
# MultiStepsState (the same fields in Optax and gradchain): field -> kind of statistic; the
# gradient_step counts the inner optimizer's updates.
_ACCUMULATION_FIELDS = {"mini_step": "micro-batch count", "acc_grads": "accumulated gradients",
                        "skip_state": "skip state"}
_SUPPORTED = "Optax's adam, adamw, nadam, sgd and rmsprop"


def _optax_class(node):
    """The name of ``node``'s class if Optax defines it, else None."""
    kind = type(node)
    return kind.__name__ if kind.__module__.split(".")[0] == "optax" else None


class _Statistic(NamedTuple):
    kind: str
    location: tuple   # field names and indices from the state's root
    value: Any


def from_optax_state(tx, optax_state, params, *, step=None):
    """The state of gradchain's ``tx`` that continues where ``optax_state`` left off.

    Args:
      tx: the gradchain optimizer to resume with, built with the arguments of the Optax one
        (``gc.adam(1e-3)`` for ``optax.adam(1e-3)``); its hyperparameters are in force.
      optax_state: the state of the Optax optimizer (restored from a checkpoint, or live).
      params: the params it optimizes.
      step: the number of updates Optax has applied (under ``MultiSteps``: of the inner
        optimizer); needed only when gradchain's state counts steps and Optax's keeps no count
        (``sgd``/``rmsprop`` at a constant learning rate). Step counts are compared where they
        are concrete (not under ``jit``).

    Returns:
      ``tx.init(params)`` with its moments, momentum buffers, accumulation buffer and step
      counts taken from ``optax_state``, in ``tx.init``'s dtypes.

    Raises:
      ValueError: ``optax_state`` does not fit ``tx`` (see the module docstring).
    """
    optax_state, params = plain_state(optax_state), plain_state(params)
    state = tx.init(params)
    found, counts = [], []
    _collect_optax(optax_state, (), found, counts)
    expected, counted = [], []
    _collect_gradchain(tx, state, (), False, expected, counted)
    pairs = _pair(found, expected)
    for theirs, ours in pairs:
        _check_same_leaves(theirs, ours)
    count = _step_count(counts, step, counted)
    for theirs, ours in pairs:
        state = _replace_at(state, ours.location, _like(theirs.value, ours.value))
    for location in counted:
        if location[-1] == "momentum_product":   # NAdam's Π_t = β1^t, with tx's β1
            b1 = _get(state, location[:-1]).hyperparams["b1"]
            value = jnp.power(b1, jnp.asarray(count, b1.dtype))
        else:
            value = count
        state = _replace_at(state, location, _like(value, _get(state, location)))
    return state


def _collect_optax(node, location, found, counts):
    """Every statistic and step count in an Optax state, refusing what no supported gradchain
    optimizer keeps."""
    name = _optax_class(node)
    if name == "MultiStepsState":
        counts.append(_Statistic("count", location + ("gradient_step",), node.gradient_step))
        for field, kind in _ACCUMULATION_FIELDS.items():
            if jax.tree.leaves(getattr(node, field)):
                found.append(_Statistic(kind, location + (field,), getattr(node, field)))
        _collect_optax(node.inner_opt_state, location + ("inner_opt_state",), found, counts)
        return
    if name in _OPTAX_FIELDS:
        for field, kind in _OPTAX_FIELDS[name].items():
            target = counts if kind == "count" else found
            target.append(_Statistic(kind, location + (field,), getattr(node, field)))
        return
    if name in _OPTAX_WRAPPERS:
        if "count" in node._fields:
            counts.append(_Statistic("count", location + ("count",), node.count))
        for field in _OPTAX_WRAPPERS[name]:
            _collect_optax(getattr(node, field), location + (field,), found, counts)
        return
    if is_namedtuple(node):
        if jax.tree.leaves(node):
            raise ValueError(
                f"{NAME}: the Optax state{_at(location)} is {type(node).__module__}."
                f"{type(node).__qualname__} (fields {', '.join(node._fields)}), which no "
                f"gradchain optimizer converted from {_SUPPORTED} keeps")
    elif isinstance(node, dict):
        for key, value in node.items():
            _collect_optax(value, location + ((key,),), found, counts)
    elif isinstance(node, (tuple, list)):
        for i, value in enumerate(node):
            _collect_optax(value, location + (i,), found, counts)
    elif node is not None:
        raise ValueError(f"{NAME}: the Optax state{_at(location)} is of type "
                         f"{type(node).__name__}, not a state of {_SUPPORTED}")


def _collect_gradchain(tx, node, location, squared, expected, counted):
    """Walk ``tx`` and its state side by side, through what its state is made of
    (``tx.parts``): the statistics Optax's state must fill (``expected``) and the step counts
    (``counted``). ``squared``: a ``square()`` came earlier in an enclosing chain (the EMA is a
    second moment)."""
    parts = dict(getattr(tx, "parts", ()) or ())
    if isinstance(node, BranchState) and all(("branches", i) in parts
                                             for i in range(len(node.branches))):
        for i, part in enumerate(node.branches):
            _collect_gradchain(parts["branches", i], part, location + ("branches", i), squared,
                               expected, counted)
    elif (isinstance(node, tuple) and not is_namedtuple(node)
          and all((i,) in parts for i in range(len(node)))):   # a chain: parts in order
        for i, part in enumerate(node):
            _collect_gradchain(parts[i,], part, location + (i,), squared, expected, counted)
            squared = squared or getattr(getattr(parts[i,], "call", None), "function",
                                         None) is square
    elif isinstance(node, MaskedState) and ("inner_state",) in parts:  # masked, apply_where
        _collect_gradchain(parts["inner_state",], node.inner_state, location + ("inner_state",),
                           squared, expected, counted)
    elif isinstance(node, MultiStepsState) and ("inner_opt_state",) in parts:  # MultiSteps
        counted.append(location + ("gradient_step",))
        for field, kind in _ACCUMULATION_FIELDS.items():
            if jax.tree.leaves(getattr(node, field)):
                expected.append(_Statistic(kind, location + (field,), getattr(node, field)))
        _collect_gradchain(parts["inner_opt_state",], node.inner_opt_state,
                           location + ("inner_opt_state",), squared, expected, counted)
    elif not is_namedtuple(node):
        raise ValueError(f"{NAME}: gradchain's state{_at(location)} is of type "
                         f"{type(node).__name__}, not a state of an optimizer converted from "
                         f"{_SUPPORTED}")
    else:
        _primitive(node, location, expected, counted, squared)


def _primitive(node, location, expected, counted, squared):
    hyperparams = node.hyperparams if "hyperparams" in node._fields else {}
    if "count" in node._fields and node.count is not None:
        counted.append(location + ("count",))
    if isinstance(node, EmaState):
        kind = ("Adam's first moment" if "b1" in hyperparams else
                "Adam's second moment" if "b2" in hyperparams else
                "RMSProp's second moment" if squared else "centred RMSProp's mean")
        expected.append(_Statistic(kind, location + ("ema",), node.ema))
    elif isinstance(node, MomentumState):
        expected.append(_Statistic("momentum buffer", location + ("buffer",), node.buffer))
    elif isinstance(node, NesterovMomentState):
        if "momentum_decay" in hyperparams or "b1" in scheduled_keys(hyperparams):
            raise ValueError(
                f"{NAME}: gradchain's nesterov_first_moment{_at(location)} has a varying "
                "momentum (momentum_decay or a b1 schedule); Optax's adam(nesterov=True) has "
                "a constant b1: build the gradchain optimizer without them")
        expected.append(_Statistic("Adam's first moment", location + ("ema",), node.ema))
        counted.append(location + ("momentum_product",))
    else:
        held = [f for f in node._fields if f not in ("count", "hyperparams")
                and jax.tree.leaves(getattr(node, f))]
        if held:
            raise ValueError(
                f"{NAME}: gradchain's state{_at(location)} is a {type(node).__name__} holding "
                f"{', '.join(held)}, which no state of {_SUPPORTED} holds")


def _pair(found, expected):
    """Match Optax's statistics with gradchain's by kind, at most one of each on each side."""
    for side, stats in (("Optax", found), ("gradchain's", expected)):
        kinds = [s.kind for s in stats]
        for kind in dict.fromkeys(kinds):
            if kinds.count(kind) > 1:
                raise ValueError(
                    f"{NAME}: the {side} state holds {kind} {kinds.count(kind)} times "
                    f"({', '.join(_text(s.location) for s in stats if s.kind == kind)}); "
                    "one optimizer per state is supported")
    theirs = {s.kind: s for s in found}
    ours = {s.kind for s in expected}
    if set(theirs) != ours:
        hint = ""
        if "accumulated gradients" in set(theirs) - ours:
            hint = ("; to keep accumulating, wrap the gradchain optimizer in gc.MultiSteps, or "
                    "convert optax_state.inner_opt_state alone")
        raise ValueError(
            f"{NAME}: the Optax state does not fit the gradchain optimizer (another algorithm?)"
            f": the Optax state holds {_listing(found)}; gradchain's expects "
            f"{_listing(expected)}{hint}")
    return [(theirs[s.kind], s) for s in expected]


def _check_same_leaves(theirs, ours):
    """Same params paths, containers, shapes and dtypes in Optax's statistic and gradchain's."""
    their_paths, their_leaves, their_tree = flatten_leaves(theirs.value)
    our_paths, our_leaves, our_tree = flatten_leaves(ours.value)
    intro = (f"{NAME}: the Optax {theirs.kind} (optax_state at {_text(theirs.location)}) does "
             f"not fit gradchain's (state at {_text(ours.location)})")
    if their_paths != our_paths:
        only_theirs = [format_path(p) for p in their_paths if p not in our_paths]
        only_ours = [format_path(p) for p in our_paths if p not in their_paths]
        raise ValueError(f"{intro}: another params tree; params paths only in Optax's: "
                         f"{only_theirs[:4]}, only in gradchain's: {only_ours[:4]}")
    if their_tree != our_tree:
        raise ValueError(f"{intro}: the same paths in other containers ({their_tree} vs "
                         f"{our_tree})")
    for path, a, b in zip(our_paths, their_leaves, our_leaves):
        if jnp.shape(a) != jnp.shape(b):
            raise ValueError(f"{intro}: leaf {format_path(path)} has shape {jnp.shape(a)} "
                             f"there, {jnp.shape(b)} in gradchain's")
        if jnp.result_type(a) != jnp.result_type(b):
            raise ValueError(
                f"{intro}: leaf {format_path(path)} is {jnp.result_type(a)} there, "
                f"{jnp.result_type(b)} in gradchain's; build the gradchain optimizer with the "
                "Optax one's dtype argument (mu_dtype, accumulator_dtype)")


def _step_count(counts, step, counted):
    """The number of updates Optax applied: its counts and ``step``, which must agree."""
    given = [(f"optax_state at {_text(c.location)}", c.value) for c in counts]
    if step is not None:
        given.append(("step", step))
    concrete = {where: int(np.asarray(v)) for where, v in given
                if not isinstance(v, jax.core.Tracer)}
    if len(set(concrete.values())) > 1:
        listing = ", ".join(f"{where} = {v}" for where, v in concrete.items())
        raise ValueError(f"{NAME}: the step counts disagree ({listing}); each must be the "
                         "number of updates the Optax optimizer has applied")
    if not given and counted:
        raise ValueError(
            f"{NAME}: gradchain's state counts steps (state at {_text(counted[0])}) but the "
            "Optax state holds no step count (Optax's sgd and rmsprop keep none at a constant "
            "learning rate); pass step=, the number of updates Optax has applied (e.g. "
            "TrainState.step)")
    return given[0][1] if given else None


def _text(location) -> str:
    """``location`` as ``format_path`` writes it, ``1/branches/0/1/ema``: a string is a
    NamedTuple field, an int an index, a 1-tuple a dict key."""
    return format_path(k[0] if isinstance(k, tuple) else k for k in location)


def _at(location) -> str:
    return f" at {_text(location)}" if location else ""


def _listing(stats) -> str:
    return ", ".join(f"{s.kind} ({_text(s.location)})" for s in stats) or "no statistics"


def _get(node, location):
    for key in location:
        node = getattr(node, key) if isinstance(key, str) and is_namedtuple(node) else node[key]
    return node


def _replace_at(node, location, value):
    """``node`` with the entry at ``location`` replaced by ``value`` (NamedTuples, tuples,
    lists and dicts rebuilt on the way)."""
    if not location:
        return value
    key, rest = location[0], location[1:]
    if is_namedtuple(node):
        if isinstance(key, str):
            return node._replace(**{key: _replace_at(getattr(node, key), rest, value)})
        return node._replace(**{node._fields[key]: _replace_at(node[key], rest, value)})
    if isinstance(node, dict):
        return {**node, key: _replace_at(node[key], rest, value)}
    parts = list(node)
    parts[key] = _replace_at(parts[key], rest, value)
    return type(node)(parts)


def _like(value, reference):
    """``value`` (a tree like ``reference``) with ``reference``'s dtypes."""
    return jax.tree.map(lambda v, r: jnp.asarray(v, jnp.result_type(r)), value, reference)
