"""Many small leaves as one vector per dtype: ``flatten(adam(1e-3))``.

A jitted step passes every leaf of its arguments and results as a buffer of its own, and each
costs microseconds of dispatch on a CPU. With 5,000 leaves of 16x8, Adam's two moments are
10,000 more buffers in and 10,000 out, and a step that only passes them through takes longer
than torch's fused Adam takes for the whole update (BUILD.md, "Benchmarks"). ``flatten(tx)``
keeps ``tx``'s state for one vector per dtype, the leaves' elements concatenated in tree order,
so the state is a handful of buffers however many leaves there are: each update concatenates
the updates (and the params) of each dtype, runs ``tx`` on those vectors and splits its result
back into the leaves' shapes.

Optax's ``flatten`` is the same idea with one vector of the promoted dtype (a bfloat16 leaf
beside float32 ones is updated, and returned, in float32); here each dtype keeps its vector, so
updates keep the dtype of their leaves.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_same_structure, check_transformations


class FlattenState(NamedTuple):
    """The inner transformation's state for ``{dtype name: vector}``."""
    inner_state: Any


def _flat(owner: str, tree, what: str, groups=None):
    """``({dtype name: vector}, groups)``: the leaves of ``tree`` raveled and concatenated per
    dtype in tree order; ``groups`` (``{dtype name: [(position, shape), ...]}``) is read from
    ``tree`` unless given, in which case ``tree``'s leaves are gathered into those groups."""
    leaves = jax.tree.leaves(tree)
    if groups is None:
        groups = {}
        for k, leaf in enumerate(leaves):
            groups.setdefault(jnp.result_type(leaf).name, []).append((k, np.shape(leaf)))
    vectors = {}
    for dtype, members in groups.items():
        parts = [jnp.ravel(jnp.asarray(leaves[k])) for k, _ in members]
        kinds = {p.dtype.name for p in parts}
        if len(kinds) > 1:
            raise ValueError(f"{owner}: the {what} of the {dtype} updates are of several dtypes "
                             f"({', '.join(sorted(kinds))}); each dtype is one vector")
        vectors[dtype] = jnp.concatenate(parts) if len(parts) > 1 else parts[0]
    return vectors, groups


@public
def flatten(inner) -> GradientTransformation:
    """``inner`` run on one vector per dtype instead of on the leaves: state in a few buffers.

    For trees of many small leaves, where each leaf's buffers cost more dispatch than its
    arithmetic: the state ``inner`` keeps (Adam's moments, say) is one array per dtype and
    moment, not one per leaf. On large leaves the copies into the vectors and back cost more
    than they save (GPT-2's parameters: 6.9x Optax's Adam step on a 2-core CPU). Each update
    concatenates the updates and params of each dtype (tree order, raveled), calls ``inner`` on
    ``{dtype name: vector}`` and splits the result back into the leaves' shapes and dtypes.
    The extra keyword arguments of ``update`` go to ``inner`` unchanged.

    ``inner`` sees one long vector: that is the same optimizer only for rules that treat every
    element alike, element-wise (SGD, momentum, Adam, AdamW, RMSProp, Lion, ...) or over the
    whole tree (``clip_by_global_norm``). A rule that reads a leaf's shape or norm (Adafactor's
    factored moments, Muon, LAMB's trust ratio, per-leaf clipping) computes something else on
    the vector. Under XLA the numbers can differ from ``inner``'s on the leaves by rounding
    (XLA rewrites a division by a scalar that only one array reads into a multiplication).
    Optax's ``flatten``, except that dtypes are not promoted to one.

    Args:
      inner: the transformation to run on the vectors.

    Returns:
      A ``GradientTransformation`` whose state is ``FlattenState(inner_state)``, ``inner``'s
      state for ``{dtype name: vector}``.

    Raises:
      ValueError: ``params`` whose leaves group into other dtypes than the updates' (each
        dtype of the updates gathers the params at the same places into one vector), or a
        tree other than the updates'.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {f"b{k}": jnp.zeros(2) for k in range(3)}
      >>> tx = gc.flatten(gc.adam(0.1))
      >>> state = tx.init(params)
      >>> [m.shape for m in jax.tree.leaves(state) if m.ndim]  # Adam's two moments
      [(6,), (6,)]
      >>> updates, state = tx.update({k: jnp.ones(2) for k in params}, state, params)
      >>> updates["b2"].round(4).tolist()
      [-0.1, -0.1]
    """
    check_transformations("flatten", {"inner": inner})

    def init(params):
        vectors, _ = _flat("flatten", params, "params")
        return FlattenState(inner.init(vectors))

    def update(updates, state, params=None, **extra):
        vectors, groups = _flat("flatten", updates, "updates")
        flat_params = None
        if params is not None:
            check_same_structure("flatten", updates, params, "params")
            flat_params, _ = _flat("flatten", params, "params", groups)
        new, inner_state = call_update(inner, vectors, state.inner_state, flat_params, extra)
        leaves = [None] * sum(len(members) for members in groups.values())
        for dtype, members in groups.items():
            sizes = [int(np.prod(shape)) for _, shape in members]
            pieces = jnp.split(new[dtype], np.cumsum(sizes)[:-1]) if len(members) > 1 \
                else [new[dtype]]
            for (k, shape), piece in zip(members, pieces):
                leaves[k] = piece.reshape(shape)
        return jax.tree.unflatten(jax.tree.structure(updates), leaves), FlattenState(inner_state)

    return GradientTransformation(init, update, name="flatten", children=[inner],
                                  parts=[(("inner_state",), inner)], state_type=FlattenState)
