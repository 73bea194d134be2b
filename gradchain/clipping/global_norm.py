"""Clipping by the global norm of all updates (Pascanu et al. 2013)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import abs_sq
from gradchain.core.hyperparams import ScalarOrSchedule, cast, state_names
from gradchain.core.public import public
from gradchain.core.reductions import check_axis_name
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_range
from gradchain.kit.reductions import tree_sum
from gradchain.kit.rules import cross_leaf


class ClipByGlobalNormState(NamedTuple):
    count: jax.Array | None  # None unless max_norm is a schedule
    hyperparams: dict


_SQUARES = tree_sum(lambda u: jnp.sum(abs_sq(u)))
"""``Σ_leaves Σ |u|²``, each leaf in ``max(its dtype, float32)``."""


def global_norm(tree, *, axis_name=None) -> jax.Array:
    """``√(Σ_leaves Σ |u|²)``, each leaf squared in ``max(its dtype, float32)`` (complex leaves
    by their modulus, as Optax's ``optax.tree.norm``); 0 for no leaves.

    ``axis_name``: the mesh or ``pmap`` axis the leaves are split over (the partial sums of
    squares are ``psum``-ed over it; see ``gradchain.core.reductions``); None: not split.

    Args:
      tree: a pytree of arrays (updates, gradients, params).
      axis_name: the mesh or ``pmap`` axis the leaves are split over, or None.

    Returns:
      The norm, a scalar array (float32 at least).
    """
    check_axis_name("global_norm", axis_name)
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(_SQUARES.compute(leaves, [None] * len(leaves), axis_name))


@public
def clip_by_global_norm(max_norm: ScalarOrSchedule, *, axis_name=None, hyperparam_name=None
                        ) -> GradientTransformation:
    """``u -> u`` if ``‖u‖ < max_norm``, else ``(u / ‖u‖) · max_norm``, with ``‖u‖`` the norm of
    all leaves together (``global_norm``).

    Scales every leaf by the same factor, so the update keeps its direction. Pascanu et al. 2013;
    Optax's ``clip_by_global_norm`` (same formula, same numbers). A ``cross_leaf`` rule reading
    the reduction ``Σ |u|²``.

    Args:
      max_norm: ``> 0``, a number, array or schedule.
      axis_name: under ``shard_map``/``pmap`` with the updates split over this axis, the norm
        of the whole tree, not of this device's part (``global_norm``); None (default): the
        updates are not split.
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``ClipByGlobalNormState(count, hyperparams)``
      (``max_norm``; ``count`` is None unless it is a schedule).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.clip_by_global_norm(1.0)
      >>> grads = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
      >>> updates, _ = tx.update(grads, tx.init(grads))
      >>> updates["a"].tolist(), updates["b"].tolist()
      ([0.6], [0.8])
    """
    names = state_names("clip_by_global_norm", hyperparam_name, ("max_norm",))
    check_range("clip_by_global_norm", names["max_norm"], max_norm, 0, low_open=True,
                allow_inf=True)
    return cross_leaf(_clip, name="clip_by_global_norm", reductions={"squares": _SQUARES},
                      axis_name=axis_name, hyperparams={"max_norm": max_norm},
                      scalars=_norm_and_keep, state_type=ClipByGlobalNormState,
                      hyperparam_name=names)


def _norm_and_keep(squares, max_norm):
    norm = jnp.sqrt(squares)
    return {"norm": norm, "keep": norm < cast(max_norm, norm.dtype)}


def _clip(u, norm, keep, max_norm):
    return jnp.where(keep, u, (u / norm) * max_norm)
