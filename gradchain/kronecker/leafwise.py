"""The transformation around a per-leaf rule whose statistic is a small tree of matrices."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import statistic_dtype
from gradchain.core.hyperparams import (Hyperparams, ScalarsByDtype, cast, compute_dtype,
                                        next_count, zero_count)
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_floating, structure_difference


def matrix_dtype(p, option) -> jnp.dtype:
    """The dtype of a leaf's factor matrices: its statistics' dtype (``option`` or its own,
    complex for a complex leaf), at least float32."""
    return jnp.promote_types(statistic_dtype("", jnp.result_type(p), option), jnp.float32)


def _is_statistic(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def leafwise_transformation(name: str, rule: Callable, statistic: Callable, hyperparams: dict,
                            scalars: Callable, state_cls: type, *, display: dict
                            ) -> GradientTransformation:
    """``out, stat' = rule(g, stat, **scalars(step, **hyperparameters))`` for each leaf.

    ``statistic(param_leaf)`` builds a leaf's statistic (a NamedTuple of arrays, matrices and
    Nones). ``scalars`` runs once per update (not once per leaf), in the hyperparameters'
    dtype, given ``step`` (the number of the update, 1 at the first, saturating); its floating
    values reach the rule cast to the leaf's compute dtype. The state is
    ``state_cls(count, stats, hyperparams)``.
    """
    hyper = Hyperparams(**hyperparams)

    def init(params):
        check_floating(name, params)
        return state_cls(zero_count(), jax.tree.map(statistic, params), hyper.init())

    def update(updates, state, params=None, **extra):
        del params, extra
        check_floating(name, updates, "updates")
        leaves, treedef = jax.tree.flatten(updates)
        try:
            per_leaf = treedef.flatten_up_to(state[1])
        except (ValueError, TypeError):
            difference = structure_difference(updates, state[1], "optimizer state",
                                              is_leaf=_is_statistic)
            raise ValueError(f"{name}: the updates do not match the optimizer state: "
                             f"{difference}") from None
        values, stored = hyper.read(state.hyperparams, state.count)
        count = next_count(state.count)
        by_dtype = ScalarsByDtype(scalars(count, **values))
        outs, new_stats = [], []
        for g, s in zip(leaves, per_leaf):
            out, s = rule(g, s, **by_dtype(compute_dtype(g.dtype)))
            outs.append(cast(out, g.dtype))
            new_stats.append(s)
        return treedef.unflatten(outs), state_cls(count, treedef.unflatten(new_stats), stored)

    return GradientTransformation(init, update, name=name, hyperparams=display,
                                  state_type=state_cls)
