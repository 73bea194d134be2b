"""Build a primitive from its rule: per element, per leaf, or across leaves.

Three builders, one contract (``gradchain.kit.contract``). Each takes the rule (a plain function
of one updates leaf) and everything else by name, and returns a ``GradientTransformation``
that keeps its hyperparameters in the state, evaluates schedules at the step count, counts
steps only when something reads them, computes in at least float32 (real scalars for complex
leaves), keeps its statistic in an explicit dtype, checks the trees it is given (naming the
first mismatching path) and names the public function the user called in its errors:

- ``elementwise(rule, ...)``: ``rule`` maps a leaf entry by entry (the statistic, if any, has
  the leaf's shape and may be kept quantized). ``gc.elementwise(jnp.sign, name="sign")`` is
  signSGD's direction, in one line.
- ``per_leaf(rule, ...)``: ``rule`` sees the whole leaf (a matrix function, a leaf's norm) and
  its statistic may be any tree of arrays per leaf (Adafactor's row and column sums, Shampoo's
  two preconditioner matrices).
- ``cross_leaf(rule, reductions=..., axis_name=...)``: a per-leaf rule that also reads
  reductions over the whole tree (a global norm), computed once per update and reduced over
  ``axis_name`` when the leaves are split across devices.

The rule's first parameter is the updates leaf ``u``; every other parameter is given by name,
so a rule declares just what it reads:

- ``stat``: this leaf's statistic (with ``statistic=``); the rule then returns
  ``(out, new_stat)``, otherwise just ``out``;
- ``param``: the params leaf (``update`` then requires params);
- ``step``: the number of this update, 1 at the first (int32, saturating);
- ``index``: the leaf's position in the flattened tree (a Python int);
- each hyperparameter by its key, each name ``scalars`` returns, each reduction
  (``cross_leaf``) and each shared statistic in ``reads`` (``gradchain.kit.shared``).

``scalars(**names) -> dict`` runs once per update (not once per leaf, which would grow the
compiled program with the number of leaves) with the hyperparameters, ``step``, the reductions,
the ``carry`` values, the ``extra_args`` given to ``update`` (``value=loss``) and ``num_leaves``
(the number of leaves) by name, and returns the scalars the rule reads: bias correction's
``1 - β^t`` belongs there. ``carry={name: initial}`` keeps update-level values in the state
(NAdam's running momentum product, a PRNG key): ``scalars`` is given the previous value and
returns the next under the same name.

The state is a NamedTuple ``(count, [stat], [carry...], hyperparams)``: by default
``StatisticState(count, stat, hyperparams)`` or ``HyperparamsState(count, hyperparams)``; pass
``state_type=`` (a NamedTuple with those fields in that order, the statistic named for what it
is) to give it a name of its own, as the built-in primitives do. ``count`` is None when nothing
reads the step.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradchain.core import quantized
from gradchain.core.dtypes import statistic_dtype
from gradchain.core.paths import format_path
from gradchain.core.hyperparams import as_hyperparam_array, cast, compute_dtype, state_names
from gradchain.core.leafwise import map_leaves
from gradchain.core.reductions import check_axis_name, shown_with_axis_name
from gradchain.core.scope import read
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import (check_choice, check_floating_dtype,
                                       check_same_structure)
from gradchain.kit.contract import Contract
from gradchain.kit.reductions import Reduction
from gradchain.kit.signature import pick, wants
from gradchain.wrappers.labels import _is_variable as is_variable, unwrap

OUTPUT_DTYPES = ("updates", "statistic", "params")


class StatisticState(NamedTuple):
    """The default state of a kit primitive with a statistic."""
    count: Optional[jax.Array]
    stat: Any
    hyperparams: dict


class HyperparamsState(NamedTuple):
    """The default state of a kit primitive without a statistic."""
    count: Optional[jax.Array]
    hyperparams: dict


def elementwise(rule: Callable, *, name: str, hyperparams: Optional[dict] = None,
                statistic=None, scalars: Optional[Callable] = None, reads: tuple = (),
                carry: Optional[dict] = None, dtype=None, output_dtype: str = "updates",
                real_statistic: bool = False, real_input: Optional[str] = None,
                state_type: Optional[type] = None, display: Optional[dict] = None,
                extra_args: tuple = (), hyperparam_name=None) -> GradientTransformation:
    """A transformation applying ``rule`` to each leaf, entry by entry (module docstring).

    Args:
      rule: ``rule(u, **names) -> out``, or ``-> (out, new_stat)`` with a statistic.
      name: the transformation's name, shown in errors and ``repr``.
      hyperparams: ``{key: number | array | schedule}``, kept in the state under ``key``
        (validate them in your constructor with ``check_range``).
      statistic: ``init(param_leaf, dtype) -> array`` of the leaf's shape, or a number to fill
        one with; None: no statistic.
      scalars: ``scalars(**names) -> dict``, run once per update.
      reads: names of statistics shared earlier in the optimizer (``share``), given to the
        rule as this leaf's part.
      carry: ``{key: initial value}``, update-level values kept in the state.
      dtype: the statistic's dtype (None: the params'; ``quantized(...)`` allowed).
      output_dtype: ``"updates"`` (the incoming updates' dtype), ``"statistic"`` (the
        statistic's: a moment estimate feeding other statistics) or ``"params"`` (the params'
        when given: the stage that makes the final update).
      real_statistic: the statistic is real whatever the params (a statistic of ``|g|²``).
      real_input: why the rule has no complex form (complex leaves are then refused with it).
      state_type: the state's NamedTuple class (default ``StatisticState`` or
        ``HyperparamsState``; required with ``carry``).
      display: what ``repr`` shows (default: ``hyperparams``).
      extra_args: keyword arguments ``update`` requires (``value`` for a loss), given to
        ``scalars`` by name.
      hyperparam_name: where the state stores a hyperparameter under another name than the
        rule reads it by: ``{key: state key}``, or a string for the one hyperparameter
        (``core.hyperparams.state_names``; primitives stored under one name are tied).

    Returns:
      A ``GradientTransformation`` whose state is ``state_type`` (default ``StatisticState(count,
      stat, hyperparams)`` with a statistic, ``HyperparamsState(count, hyperparams)``
      without).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.elementwise(lambda u, step_size: -step_size * jnp.sign(u),
      ...                     name="sign_descent", hyperparams={"step_size": 0.1})
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> updates, _ = tx.update({"w": jnp.array([3.0, -0.5])}, tx.init(params), params)
      >>> updates["w"].tolist()
      [-0.1, 0.1]
    """
    return _build(rule, name=name, hyperparams=hyperparams, statistic=statistic,
                  scalars=scalars, reads=reads, carry=carry, dtype=dtype,
                  output_dtype=output_dtype, real_statistic=real_statistic,
                  real_input=real_input, state_type=state_type, display=display,
                  per_element=True, builder="elementwise", extra_args=extra_args,
                  hyperparam_name=hyperparam_name)


def per_leaf(rule: Callable, *, name: str, hyperparams: Optional[dict] = None, statistic=None,
             scalars: Optional[Callable] = None, reads: tuple = (), carry: Optional[dict] = None,
             dtype=None, output_dtype: str = "updates", real_statistic: bool = False,
             real_input: Optional[str] = None, state_type: Optional[type] = None,
             display: Optional[dict] = None, extra_args: tuple = (),
             hyperparam_name=None) -> GradientTransformation:
    """A transformation applying ``rule`` to each whole leaf (module docstring).

    The arguments are ``elementwise``'s, except that ``statistic`` is
    ``init(param_leaf, dtype) -> any tree of arrays`` (its shapes are the rule's business:
    rows and columns, a matrix per side), and it cannot be quantized.

    Args:
      rule: ``rule(u, **names) -> out`` (or ``(out, new_stat)``), given a whole leaf ``u``.
      name: as ``elementwise``'s.
      hyperparams: as ``elementwise``'s.
      statistic: ``init(param_leaf, dtype) -> any tree of arrays``, or None.
      scalars: as ``elementwise``'s.
      reads: as ``elementwise``'s.
      carry: as ``elementwise``'s.
      dtype: the statistic's dtype (None: the params'); not a ``quantized`` format.
      output_dtype: as ``elementwise``'s.
      real_statistic: as ``elementwise``'s.
      real_input: as ``elementwise``'s.
      state_type: as ``elementwise``'s.
      display: as ``elementwise``'s.
      extra_args: as ``elementwise``'s.
      hyperparam_name: as ``elementwise``'s.

    Returns:
      A ``GradientTransformation`` whose state is ``state_type`` (default ``StatisticState(count,
      stat, hyperparams)`` with a statistic, ``HyperparamsState(count, hyperparams)``
      without).
    """
    return _build(rule, name=name, hyperparams=hyperparams, statistic=statistic,
                  scalars=scalars, reads=reads, carry=carry, dtype=dtype,
                  output_dtype=output_dtype, real_statistic=real_statistic,
                  real_input=real_input, state_type=state_type, display=display,
                  per_element=False, builder="per_leaf", extra_args=extra_args,
                  hyperparam_name=hyperparam_name)


def cross_leaf(rule: Callable, *, name: str, reductions: dict, axis_name=None,
               hyperparams: Optional[dict] = None, statistic=None,
               scalars: Optional[Callable] = None, reads: tuple = (),
               carry: Optional[dict] = None, dtype=None, output_dtype: str = "updates",
               real_statistic: bool = False, real_input: Optional[str] = None,
               state_type: Optional[type] = None, display: Optional[dict] = None,
               extra_args: tuple = (), hyperparam_name=None) -> GradientTransformation:
    """A per-leaf rule that also reads reductions over the whole tree (module docstring).

    Args:
      reductions: ``{name: tree_sum(...) | tree_max(...)}``, computed once per update on the
        incoming updates (and params, for a ``leaf_fn`` taking ``param``) and given by name to
        ``scalars`` and ``rule``.
      axis_name: the ``shard_map``/``pmap`` axis the leaves are split over: the reductions are
        then combined over it too (``gradchain.core.reductions``); None: not split.
      rule: ``rule(u, **names)``, where the names include the reductions'.
      name: as ``elementwise``'s.
      hyperparams: as ``elementwise``'s.
      statistic: as ``elementwise``'s.
      scalars: as ``elementwise``'s.
      reads: as ``elementwise``'s.
      carry: as ``elementwise``'s.
      dtype: as ``elementwise``'s.
      output_dtype: as ``elementwise``'s.
      real_statistic: as ``elementwise``'s.
      real_input: as ``elementwise``'s.
      state_type: as ``elementwise``'s.
      display: as ``elementwise``'s.
      extra_args: as ``elementwise``'s.
      hyperparam_name: as ``elementwise``'s.

    Returns:
      A ``GradientTransformation`` whose state is ``state_type`` (default ``StatisticState(count,
      stat, hyperparams)`` with a statistic, ``HyperparamsState(count, hyperparams)``
      without).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.cross_leaf(lambda u, norm_sq: u / jnp.sqrt(norm_sq), name="normalize",
      ...                    reductions={"norm_sq": gc.tree_sum(lambda u: jnp.sum(u * u))})
      >>> grads = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
      >>> updates, _ = tx.update(grads, tx.init(grads))
      >>> updates["a"].tolist(), updates["b"].tolist()
      ([0.6], [0.8])
    """
    if not isinstance(reductions, dict) or not all(
            isinstance(r, Reduction) for r in reductions.values()):
        raise TypeError(f"cross_leaf: reductions={reductions!r} must be a dict of tree_sum(...) "
                        "or tree_max(...)")
    check_axis_name(name, axis_name)
    names = state_names(name, hyperparam_name, tuple(hyperparams or {}))
    return _build(rule, name=name, hyperparams=hyperparams, statistic=statistic,
                  scalars=scalars, reads=reads, carry=carry, dtype=dtype,
                  output_dtype=output_dtype, real_statistic=real_statistic,
                  real_input=real_input, state_type=state_type,
                  display=shown_with_axis_name(display or {names[k]: v for k, v in
                                                           (hyperparams or {}).items()},
                                               axis_name),
                  per_element=False, builder="cross_leaf", reductions=reductions,
                  axis_name=axis_name, extra_args=extra_args, hyperparam_name=names)


def _build(rule, *, name, hyperparams, statistic, scalars, reads, carry, dtype, output_dtype,
           real_statistic, real_input, state_type, display, per_element, builder,
           reductions=None, axis_name=None, extra_args=(),
           hyperparam_name=None) -> GradientTransformation:
    _check_arguments(builder, rule, name, hyperparams, scalars, reads, carry, statistic,
                     state_type)
    if isinstance(extra_args, str) or not all(isinstance(a, str) for a in extra_args):
        raise TypeError(f"{builder}: {name}: extra_args={extra_args!r} must be a tuple of "
                        "keyword names")
    check_floating_dtype(name, "dtype", dtype)
    check_choice(builder, "output_dtype", output_dtype, OUTPUT_DTYPES)
    if not per_element and isinstance(dtype, quantized.Quantized):
        raise TypeError(f"{builder}: {name}: a quantized(...) statistic needs the leaf's shape; "
                        "use elementwise for a statistic kept quantized")
    if output_dtype == "statistic" and (statistic is None or not per_element):
        raise ValueError(f"{builder}: {name}: output_dtype='statistic' needs an elementwise "
                         "statistic")
    dtype = quantized.state_dtype(dtype)
    reductions = reductions or {}
    carry = dict(carry or {})
    rule_wants = wants(rule, skip_first=True)
    scalars_wants = wants(scalars, skip_first=False) if scalars is not None else None
    uses_step = any(w is not None and "step" in w.names for w in (rule_wants, scalars_wants))
    needs_params = "param" in rule_wants.names or any(
        r.needs_params() for r in reductions.values())
    contract = Contract(name, hyperparams, counts=uses_step, real_input=real_input,
                        names=state_names(name, hyperparam_name, tuple(hyperparams or {})))
    stat_init = (_filled(statistic) if statistic is not None and not callable(statistic)
                 else statistic)
    state_cls = state_type or (StatisticState if statistic is not None else HyperparamsState)

    def init(params):
        contract.check_params(params)
        parts = [contract.init_count()]
        if stat_init is not None:
            parts.append(quantized.init_stats(stat_init, params, dtype, owner=name,
                                              real=real_statistic) if per_element
                         else _leaf_statistics(name, stat_init, params, dtype, real_statistic))
        parts.extend(as_hyperparam_array(v) if not hasattr(v, "dtype") else jnp.asarray(v)
                     for v in carry.values())
        return state_cls(*parts, contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        missing = [k for k in extra_args if extra.get(k) is None]
        if missing:
            raise ValueError(f"{name}: update needs {', '.join(missing)} as keyword "
                             f"argument(s): tx.update(updates, state, params, "
                             f"{missing[0]}=...)")
        stat = state[1] if stat_init is not None else None
        step = contract.begin(updates, state, params, stat=stat, per_element=per_element,
                              needs_params=needs_params,
                              match_params=output_dtype == "params")
        leaves, treedef = jax.tree.flatten(updates)
        reduced = {k: r.compute(leaves, step.params, axis_name) for k, r in reductions.items()}
        first_carry = 1 + (stat_init is not None)
        previous = dict(zip(carry, state[first_carry:first_carry + len(carry)]))
        available = {**step.values, **reduced, **previous, "num_leaves": len(leaves),
                     **{k: extra[k] for k in extra_args}}
        if uses_step:
            available["step"] = step.step
        derived = {}
        if scalars is not None:
            derived = scalars(**pick(name, "scalars function", available, scalars_wants))
            if not isinstance(derived, dict):
                raise TypeError(f"{name}: scalars must return a dict of named scalars, got "
                                f"{type(derived).__name__}")
            missing = [k for k in carry if k not in derived]
            if missing:
                raise ValueError(f"{name}: scalars must return the next value of each carry "
                                 f"entry; missing {missing}")
        per_update = Contract.scalars({**available, **derived})
        shared = {k: _shared_leaves(name, k, updates, treedef) for k in reads}
        stats = treedef.flatten_up_to(stat) if stat is not None else [None] * len(leaves)

        def leaf(index, g, kept, p, *shared_leaves):
            s = None
            if kept is not None:
                s = quantized.load(kept, dtype) if per_element else kept
            used = p if needs_params else None
            dtypes = [g.dtype] + [x.dtype for x in jax.tree.leaves((s, used))]
            inputs = dict(per_update(compute_dtype(*dtypes)), index=index,
                          **dict(zip(shared, shared_leaves)))
            if s is not None:
                inputs["stat"] = s
            if used is not None:
                inputs["param"] = used
            result = rule(g, **pick(name, "rule", inputs, rule_wants))
            out, new_s = result if s is not None else (result, None)
            target = {"statistic": s, "params": p}.get(output_dtype)
            out = cast(out, g.dtype if target is None else target.dtype)
            if s is None:
                return out, None
            if per_element:
                return out, quantized.save(new_s, kept, dtype)
            return out, jax.tree.map(lambda new, old: cast(new, old.dtype), new_s, kept)

        columns = (leaves, stats, step.params, *shared.values())
        if "index" in rule_wants.names or rule_wants.everything:  # the rule reads the position
            pairs = [leaf(i, *row) for i, row in enumerate(zip(*columns))]
        else:
            pairs = map_leaves(functools.partial(leaf, None), *columns)
        new_updates = treedef.unflatten([o for o, _ in pairs])
        parts = [step.count]
        if stat_init is not None:
            parts.append(treedef.unflatten([s for _, s in pairs]))
        parts.extend(cast(derived[k], v.dtype) for k, v in previous.items())
        return new_updates, state_cls(*parts, step.stored)

    shown = dict(contract.specs) if display is None else display
    return GradientTransformation(init, update, name=name, hyperparams=shown,
                                  state_type=state_cls)


def _leaf_statistics(owner: str, stat_init, params, dtype, real: bool):
    """``stat_init(leaf, dtype)`` for each leaf: any tree of arrays per leaf. A Flax Variable
    (``nnx.Optimizer`` gives ``init`` its ``Param``s) is replaced by that tree, which it could
    not hold."""
    def one(path, param):
        param = unwrap(param)
        where = f"params leaf at {format_path(path)}"
        return stat_init(param, statistic_dtype(owner, jnp.result_type(param), dtype,
                                                real=real, where=where))
    return jax.tree_util.tree_map_with_path(one, params, is_leaf=is_variable)


def _filled(value):
    def init(param, dtype):
        return jnp.full(jnp.shape(param), value, dtype)
    return init


def _shared_leaves(owner: str, name: str, updates, treedef) -> list:
    tree = read(owner, name)
    check_same_structure(owner, updates, tree, f"statistic shared as {name!r}")
    return treedef.flatten_up_to(tree)


def _check_arguments(builder, rule, name, hyperparams, scalars, reads, carry, statistic,
                     state_type) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{builder}: name={name!r} must be a non-empty string (it is shown in "
                        "errors and repr)")
    if not callable(rule):
        raise TypeError(f"{builder}: {name}: rule={rule!r} is not callable; expected a function "
                        "of an updates leaf")
    if scalars is not None and not callable(scalars):
        raise TypeError(f"{builder}: {name}: scalars={scalars!r} is not callable")
    for what, value in (("hyperparams", hyperparams), ("carry", carry)):
        if value is not None and not (isinstance(value, dict)
                                      and all(isinstance(k, str) for k in value)):
            raise TypeError(f"{builder}: {name}: {what} must be a dict with string keys, got "
                            f"{value!r}")
    if isinstance(reads, str) or not all(isinstance(r, str) for r in reads):
        raise TypeError(f"{builder}: {name}: reads={reads!r} must be a tuple of names given to "
                        "share(...)")
    if statistic is not None and not callable(statistic) and not isinstance(
            statistic, (int, float)):
        raise TypeError(f"{builder}: {name}: statistic={statistic!r} must be a function "
                        "(param_leaf, dtype) -> initial statistic, or a number to fill it with")
    if carry and state_type is None:
        raise TypeError(f"{builder}: {name}: with carry, give state_type: a NamedTuple with the "
                        "fields (count, [stat], one per carry entry, hyperparams)")
    if state_type is not None:
        size = 2 + (statistic is not None) + len(carry or {})
        fields = getattr(state_type, "_fields", None)
        if fields is None or len(fields) != size:
            raise TypeError(f"{builder}: {name}: state_type={state_type!r} must be a NamedTuple "
                            f"with {size} fields (count, [stat], [carry...], hyperparams)")
