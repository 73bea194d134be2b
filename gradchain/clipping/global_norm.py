"""Clipping by the global norm of all updates (Pascanu et al. 2013)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq, real_dtype
from gradchain.core.hyperparams import (Hyperparams, ScalarsByDtype, cast, compute_dtype,
                                        next_count, state_names, zero_count)
from gradchain.core.reductions import (check_axis_name, shown_with_axis_name,
                                        sum_over_devices)
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_floating, check_range


class ClipByGlobalNormState(NamedTuple):
    count: jax.Array | None  # None unless max_norm is a schedule
    hyperparams: dict


def global_norm(tree, *, axis_name=None) -> jax.Array:
    """``√(Σ_leaves Σ |u|²)``, each leaf squared in ``max(its dtype, float32)`` (complex leaves
    by their modulus, as Optax's ``optax.tree.norm``); 0 for no leaves.

    ``axis_name``: the mesh or ``pmap`` axis the leaves are split over (the partial sums of
    squares are ``psum``-ed over it; see ``gradchain.core.reductions``); None: not split.
    """
    check_axis_name("global_norm", axis_name)
    sums = [jnp.sum(abs_sq(x.astype(compute_dtype(x)))) for x in jax.tree.leaves(tree)]
    return jnp.sqrt(sum_over_devices(sums, axis_name))


@public
def clip_by_global_norm(max_norm, *, axis_name=None,
                        hyperparam_name=None) -> GradientTransformation:
    """``u -> u`` if ``‖u‖ < max_norm``, else ``(u / ‖u‖) · max_norm``, with ``‖u‖`` the norm of
    all leaves together (``global_norm``).

    Scales every leaf by the same factor, so the update keeps its direction. Pascanu et al. 2013;
    Optax's ``clip_by_global_norm`` (same formula, same numbers).

    Args:
      max_norm: ``> 0``, a number, array or schedule.
      axis_name: under ``shard_map``/``pmap`` with the updates split over this axis, the norm
        of the whole tree, not of this device's part (``global_norm``); None (default): the
        updates are not split.
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).
    """
    names = state_names("clip_by_global_norm", hyperparam_name, ("max_norm",))
    check_range("clip_by_global_norm", names["max_norm"], max_norm, 0, low_open=True,
                allow_inf=True)
    check_axis_name("clip_by_global_norm", axis_name)
    hyper = Hyperparams(names, max_norm=max_norm)
    counting = hyper.scheduled()

    def init(params):
        check_floating("clip_by_global_norm", params)
        return ClipByGlobalNormState(zero_count() if counting else None, hyper.init())

    def update(updates, state, params=None, **extra):
        del params, extra
        check_floating("clip_by_global_norm", updates, "updates")
        values, stored = hyper.read(state.hyperparams, state.count)
        scalars = ScalarsByDtype(values)
        norm = global_norm(updates, axis_name=axis_name)
        keep = norm < cast(values["max_norm"], norm.dtype)

        def leaf(u):
            dtype = compute_dtype(u)
            x = u.astype(dtype)
            clipped = (x / norm.astype(real_dtype(dtype))) * scalars(dtype)["max_norm"]
            return cast(jnp.where(keep, x, clipped), u.dtype)

        count = next_count(state.count) if counting else None
        return jax.tree.map(leaf, updates), ClipByGlobalNormState(count, stored)

    return GradientTransformation(init, update, name="clip_by_global_norm",
                                  hyperparams=shown_with_axis_name(hyper.specs, axis_name),
                                  state_type=ClipByGlobalNormState)
