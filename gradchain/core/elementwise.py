"""The one builder behind every per-leaf primitive.

Most primitives map each leaf independently: ``out, stat' = f(g, stat, p; hyperparameters)``. The
builder gives all of them the same contract: floating-point leaves (real or complex) only, updates
checked against the state's tree (the first mismatching path is named), hyperparameters read from
the state (schedules evaluated at the step count), a saturating step count, and explicit dtypes:

- a statistic (``stat``) is kept in ``dtype`` if given, else in the dtype of the params; a
  real statistic (``real_statistic``, one of ``|g|²``) of a complex leaf in its real dtype
  (``core.dtypes.statistic_dtype``); ``dtype`` may be a ``quantized(...)`` format
  (``gradchain/core/quantized.py``): the statistic is then decoded to float32 before the rule
  and encoded again after it;
- the arithmetic runs in ``compute_dtype`` of the operands (at least float32; hyperparameters
  are cast to it), so bfloat16 leaves are updated in float32 and rounded once;
- the output is cast to the statistic's dtype (``output="stat"``, for moment estimates that feed
  other statistics), to the incoming updates' dtype (``output="input"``: a statistic passing
  through keeps its precision), or to the params' dtype when params are given
  (``output="params"``: the stage that makes the final update, the learning rate).
"""

from __future__ import annotations

from typing import Callable, Optional

import jax

from gradchain.core import quantized
from gradchain.core.leafwise import map_leaves
from gradchain.core.hyperparams import (Hyperparams, ScalarsByDtype, cast, compute_dtype,
                                        next_count, zero_count)
from gradchain.core.transformation import GradientTransformation
from gradchain.core.updates import matching_params
from gradchain.core.validation import (check_floating, check_floating_dtype, check_real,
                                       check_same_shapes, check_same_structure)


def elementwise_transformation(
    name: str,
    state_cls: type,
    leaf_update: Callable,
    hyperparams: Optional[Hyperparams] = None,
    *,
    stat_init: Optional[Callable] = None,
    dtype=None,
    output: str = "input",
    needs_params: bool = False,
    prepare: Optional[Callable] = None,
    uses_count: bool = False,
    display: Optional[dict] = None,
    real_statistic: bool = False,
    real_input: Optional[str] = None,
) -> GradientTransformation:
    """Build a transformation from ``leaf_update(g, stat, p, **scalars) -> (out, stat')``.

    Args:
      name: shown in errors and in ``repr``.
      state_cls: NamedTuple ``(count, stat, hyperparams)``, or ``(count, hyperparams)`` when
        ``stat_init`` is None.
      leaf_update: per-leaf rule. ``stat`` and ``p`` are None when the primitive keeps no
        statistic or needs no params.
      hyperparams: the numeric hyperparameters.
      stat_init: ``(param_leaf, dtype) -> initial statistic leaf``, or None for no statistic.
      dtype: dtype of the statistic (None: the params' dtype).
      output: ``"input"``, ``"stat"`` or ``"params"`` (the updates' dtype without params):
        which dtype the outputs are cast to.
      needs_params: raise a clear error when ``update`` is called without params.
      prepare: ``(count, **hp) -> scalars``, run once per update (not once per leaf, which
        would grow the compiled program with the number of leaves); ``count`` is the number of
        earlier updates (None unless counted, see ``uses_count``). Default: the
        hyperparameter values themselves.
      uses_count: the rule depends on the step (bias correction, a first-step rule). The state
        keeps a step count only then or when a hyperparameter is a schedule; otherwise its
        ``count`` is None, which costs no buffer and no operation in the compiled step.
      display: hyperparameters to show in ``repr`` (default: those in ``hyperparams``).
      real_statistic: the statistic is real whatever the params (a statistic of ``|g|²``): for
        complex params it is kept in their real dtype (float32 for complex64).
      real_input: why the rule has no complex form; complex updates are then refused with it.
    """
    hyper = hyperparams or Hyperparams()
    counting = uses_count or hyper.scheduled()
    check_floating_dtype(name, "dtype", dtype)
    dtype = quantized.state_dtype(dtype)

    def init(params):
        check_floating(name, params)
        count = zero_count() if counting else None
        if stat_init is None:
            return state_cls(count, hyper.init())
        stat = quantized.init_stats(stat_init, params, dtype, owner=name, real=real_statistic)
        return state_cls(count, stat, hyper.init())

    def update(updates, state, params=None, **extra):
        del extra
        check_floating(name, updates, "updates")
        if real_input is not None:
            check_real(name, updates, "updates", real_input)
        stat = state[1] if stat_init is not None else None
        if stat is not None:
            codes = quantized.codes_view(stat)
            check_same_structure(name, updates, codes)
            check_same_shapes(name, updates, codes)
        if needs_params and params is None:
            raise ValueError(f"{name}: update needs params (call update(updates, state, "
                             "params))")
        ps = matching_params(name, updates, params if needs_params or output == "params"
                             else None)
        values, stored = hyper.read(state.hyperparams, state.count)
        scalars = ScalarsByDtype(values if prepare is None else prepare(state.count, **values))

        def leaf(g, kept, p):
            s = None if kept is None else quantized.load(kept, dtype)
            used = p if needs_params else None
            dtypes = [x.dtype for x in (g, s, used) if x is not None]
            out, new_s = leaf_update(g, s, used, **scalars(compute_dtype(*dtypes)))
            target = {"stat": s, "params": p}.get(output)
            target = g.dtype if target is None else target.dtype
            return cast(out, target), (None if s is None else quantized.save(new_s, kept, dtype))

        leaves, treedef = jax.tree.flatten(updates)
        stats = treedef.flatten_up_to(stat) if stat is not None else [None] * len(leaves)
        pairs = map_leaves(leaf, leaves, stats, ps)
        new_updates = treedef.unflatten([o for o, _ in pairs])
        count = next_count(state.count) if counting else None
        if stat_init is None:
            return new_updates, state_cls(count, stored)
        new_stat = treedef.unflatten([s for _, s in pairs])
        return new_updates, state_cls(count, new_stat, stored)

    shown = hyper.specs if display is None else display
    return GradientTransformation(init, update, name=name, hyperparams=shown,
                                  state_type=state_cls)
