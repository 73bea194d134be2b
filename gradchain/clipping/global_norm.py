"""Clipping by the global norm of all updates (Pascanu et al. 2013)."""

from __future__ import annotations

import functools
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq, real_dtype
from gradchain.core.hyperparams import (Hyperparams, ScalarsByDtype, cast, compute_dtype,
                                        next_count, zero_count)
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_floating, check_range


class ClipByGlobalNormState(NamedTuple):
    count: jax.Array | None  # None unless max_norm is a schedule
    hyperparams: dict


def global_norm(tree) -> jax.Array:
    """``√(Σ_leaves Σ |u|²)``, each leaf squared in ``max(its dtype, float32)`` (complex leaves
    by their modulus, as Optax's ``optax.tree.norm``); 0 for no leaves."""
    sums = [jnp.sum(abs_sq(x.astype(compute_dtype(x)))) for x in jax.tree.leaves(tree)]
    return jnp.sqrt(functools.reduce(operator.add, sums, 0.0))


def clip_by_global_norm(max_norm) -> GradientTransformation:
    """``u -> u`` if ``‖u‖ < max_norm``, else ``(u / ‖u‖) · max_norm``, with ``‖u‖`` the norm of
    all leaves together (``global_norm``).

    Scales every leaf by the same factor, so the update keeps its direction. Pascanu et al. 2013;
    Optax's ``clip_by_global_norm`` (same formula, same numbers).

    ``max_norm > 0``: a number, array or schedule.
    """
    check_range("clip_by_global_norm", "max_norm", max_norm, 0, low_open=True)
    hyper = Hyperparams(max_norm=max_norm)
    counting = hyper.scheduled()

    def init(params):
        check_floating("clip_by_global_norm", params)
        return ClipByGlobalNormState(zero_count() if counting else None, hyper.init())

    def update(updates, state, params=None, **extra):
        del params, extra
        check_floating("clip_by_global_norm", updates, "updates")
        values, stored = hyper.read(state.hyperparams, state.count)
        scalars = ScalarsByDtype(values)
        norm = global_norm(updates)
        keep = norm < cast(values["max_norm"], norm.dtype)

        def leaf(u):
            dtype = compute_dtype(u)
            x = u.astype(dtype)
            clipped = (x / norm.astype(real_dtype(dtype))) * scalars(dtype)["max_norm"]
            return cast(jnp.where(keep, x, clipped), u.dtype)

        count = next_count(state.count) if counting else None
        return jax.tree.map(leaf, updates), ClipByGlobalNormState(count, stored)

    return GradientTransformation(init, update, name="clip_by_global_norm",
                                  hyperparams=hyper.specs)
