"""The transformation around a per-leaf rule whose statistic is a small tree of matrices."""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import statistic_dtype
from gradchain.core.hyperparams import (Hyperparams, ScalarsByDtype, cast, compute_dtype,
                                        next_count, zero_count)
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_floating, structure_difference


def matrix_dtype(p, option) -> jnp.dtype:
    """The dtype of a leaf's factor matrices: its statistics' dtype (``option`` or its own,
    complex for a complex leaf), at least float32."""
    return jnp.promote_types(statistic_dtype("", jnp.result_type(p), option), jnp.float32)


def leafwise_transformation(name: str, rule: Callable, statistic: Callable, hyperparams: dict,
                            state_cls: type, *, display: dict, graft=None
                            ) -> GradientTransformation:
    """``out, stat' = rule(g, stat, step, **hyperparameters[, graft=graft's output leaf])``.

    ``statistic(param_leaf, None)`` builds a leaf's statistic (any tree). The state is
    ``state_cls(count, stats, hyperparams)``, or ``state_cls(count, graft_state, stats,
    hyperparams)`` with a ``graft`` transformation, whose output on the same updates the rule
    reads leaf by leaf. ``step`` is the number of the update, 1 at the first (saturating).
    """
    hyper = Hyperparams(**hyperparams)

    def init(params):
        check_floating(name, params)
        stats = jax.tree.map(lambda p: statistic(p, None), params)
        if graft is None:
            return state_cls(zero_count(), stats, hyper.init())
        return state_cls(zero_count(), graft.init(params), stats, hyper.init())

    def update(updates, state, params=None, **extra):
        check_floating(name, updates, "updates")
        stats = state[-2]
        leaves, treedef = jax.tree.flatten(updates)
        try:
            per_leaf = treedef.flatten_up_to(stats)
        except (ValueError, TypeError):
            raise ValueError(f"{name}: the updates do not match the optimizer state: "
                             f"{structure_difference(updates, stats, 'optimizer state')}"
                             ) from None
        grafted = [None] * len(leaves)
        if graft is not None:
            graft_out, graft_state = call_update(graft, updates, state[1], params, extra)
            grafted = treedef.flatten_up_to(graft_out)
        values, stored = hyper.read(state.hyperparams, state.count)
        count = next_count(state.count)
        scalars = ScalarsByDtype(values)
        outs, new_stats = [], []
        for g, s, a in zip(leaves, per_leaf, grafted):
            extra_in = {} if graft is None else {"graft": a}
            out, s = rule(g, s, count, **scalars(compute_dtype(g.dtype)), **extra_in)
            outs.append(cast(out, g.dtype))
            new_stats.append(s)
        new_stats = treedef.unflatten(new_stats)
        if graft is None:
            return treedef.unflatten(outs), state_cls(count, new_stats, stored)
        return treedef.unflatten(outs), state_cls(count, graft_state, new_stats, stored)

    return GradientTransformation(init, update, name=name, hyperparams=display,
                                  children=[] if graft is None else [graft],
                                  state_type=state_cls)
