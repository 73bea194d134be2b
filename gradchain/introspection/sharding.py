"""Where an optimizer's state lives on a device mesh: the shardings of ``tx.init(params)``.

``state_sharding(tx, params)`` gives a ``NamedSharding`` for every array of the state, so that
``jax.jit(tx.init, out_shardings=state_sharding(tx, params))(params)`` creates the state already
distributed (it is never whole on one device) and a jitted step can keep it so
(``out_shardings`` again).

The statistics are found by their shape, not by their names: the state's shapes are read with
``jax.eval_shape(tx.init, params)`` (nothing is computed or allocated) and every subtree of the
state is matched against the params' tree. A subtree with the params' structure whose entries are
arrays of their params leaf's shape, or ``MaskedNode()`` placeholders where a wrapper (a mask, a
parameter group) does not own the leaf, is a per-parameter statistic (a moment, a momentum
buffer, an accumulation buffer, Lookahead's slow weights); every other array (step counts,
hyperparameters, scalars of any kind, PRNG keys) is replicated.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gradchain.core.quantized import QuantizedArray, codes_view, is_quantized
from gradchain.wrappers.labels import MaskedNode

NAME = "state_sharding"


def state_sharding(tx, params, shard_over: Optional[Union[str, Sequence[str]]] = None, *,
                   mesh: Optional[Mesh] = None):
    """The shardings of ``tx.init(params)``: a tree of ``NamedSharding`` shaped like the state.

    - A per-parameter statistic follows its param: the param's ``PartitionSpec`` on the same
      mesh. A param without a ``NamedSharding`` (an uncommitted array, a
      ``jax.ShapeDtypeStruct`` without ``sharding``) counts as replicated.
    - With ``shard_over`` (a mesh axis name, or a tuple of them) each statistic is also split
      over that axis, ZeRO stage 1 (Rajbhandari et al. 2020): params replicated over the
      data-parallel axis, optimizer state partitioned over it. The statistic is split along
      its first dimension that no mesh axis splits yet and whose size is a multiple of the
      axis size; failing that, along its first already split dimension whose size is a
      multiple of both (``("model", "data")``); failing both (a size-3 bias), it follows its
      param. With params replicated over ``n`` devices, each device then holds ``1/n`` of the
      statistics.
    - Everything else (step counts, hyperparameters) is replicated.

    Args:
      tx: the gradient transformation (``init`` is only traced, through ``jax.eval_shape``).
      params: the params, as arrays or ``jax.ShapeDtypeStruct`` (with ``sharding=`` where
        they are sharded).
      shard_over: None (default): statistics are placed like their params; a mesh axis name,
        or a tuple of them: split them over it as well.
      mesh: the mesh, when no param has a ``NamedSharding`` to take it from; if both are
        there, they must agree.

    Returns:
      A tree with the structure of ``jax.eval_shape(tx.init, params)`` whose leaves are
      ``NamedSharding``s: ``jax.jit(tx.init, out_shardings=...)`` and a jitted step's
      ``in_shardings``/``out_shardings`` take it as it is.

    Raises:
      ValueError: no mesh (no param has a ``NamedSharding`` and ``mesh`` is None), params on
        different meshes, or a ``shard_over`` axis the mesh does not have.
    """
    param_leaves, param_tree = jax.tree.flatten(params)
    specs, mesh = _param_specs(param_leaves, mesh)
    over = _axes(shard_over, mesh)
    state_shapes = jax.eval_shape(tx.init, params)
    replicated = NamedSharding(mesh, PartitionSpec())

    def statistic(leaf, spec):
        return NamedSharding(mesh, _split_further(spec, leaf.shape, over, mesh) if over else spec)

    def entry_sharding(entry, kept, spec):
        if isinstance(entry, MaskedNode):
            return entry
        if is_quantized(kept):  # codes in the param's shape; one scale per block, replicated
            return QuantizedArray(statistic(entry, spec), replicated)
        return statistic(entry, spec)

    def place(node):
        matched = _per_parameter(codes_view(node), param_tree, param_leaves)
        if matched is not None:
            return param_tree.unflatten([
                entry_sharding(entry, kept, spec)
                for entry, kept, spec in zip(matched, param_tree.flatten_up_to(node), specs)])
        if isinstance(node, jax.ShapeDtypeStruct):
            return replicated
        children, node_tree = jax.tree.flatten(node, is_leaf=lambda x: x is not node)
        return node_tree.unflatten([place(child) for child in children])

    return place(state_shapes)


def _param_specs(leaves: list, mesh: Optional[Mesh]):
    """Each param's ``PartitionSpec`` (padded to its rank) and the mesh they share."""
    meshes = {leaf.sharding.mesh for leaf in leaves
              if isinstance(getattr(leaf, "sharding", None), NamedSharding)}
    if mesh is not None:
        meshes.add(mesh)
    if not meshes:
        raise ValueError(f"{NAME}: no param has a NamedSharding to take the mesh from; give "
                         "mesh= (or place the params with jax.device_put(x, NamedSharding(mesh, "
                         "spec)))")
    if len(meshes) > 1:
        raise ValueError(f"{NAME}: the params and mesh= are on {len(meshes)} different meshes "
                         f"({', '.join(sorted(str(dict(m.shape)) for m in meshes))}); the "
                         "state's shardings need one")
    specs = []
    for leaf in leaves:
        sharding = getattr(leaf, "sharding", None)
        spec = tuple(sharding.spec) if isinstance(sharding, NamedSharding) else ()
        specs.append(PartitionSpec(*spec, *[None] * (len(leaf.shape) - len(spec))))
    return specs, meshes.pop()


def _axes(shard_over, mesh: Mesh) -> tuple:
    """``shard_over`` as a tuple of mesh axis names (empty for None)."""
    if shard_over is None:
        return ()
    names = tuple(shard_over) if isinstance(shard_over, (tuple, list)) else (shard_over,)
    unknown = [name for name in names if name not in mesh.axis_names]
    if not names or unknown:
        raise ValueError(f"{NAME}: shard_over={shard_over!r} is not an axis of the mesh; "
                         f"expected None, one of {list(mesh.axis_names)} or a tuple of them")
    return names


def _per_parameter(node, param_tree, param_leaves):
    """The entries of ``node`` at the params' leaves if ``node`` is a per-parameter statistic
    (the params' structure; each entry an array of its param's shape or a ``MaskedNode``),
    else None."""
    try:
        entries = param_tree.flatten_up_to(node)
    except (ValueError, TypeError):
        return None
    for entry, param in zip(entries, param_leaves):
        if isinstance(entry, MaskedNode):
            continue
        if not (hasattr(entry, "shape") and hasattr(entry, "dtype")) or (
                tuple(entry.shape) != tuple(param.shape)):
            return None
    return entries


def _split_further(spec: PartitionSpec, shape: tuple, over: tuple, mesh: Mesh) -> PartitionSpec:
    """``spec`` with the axes ``over`` added to the first dimension that can take them (see
    ``state_sharding``); ``spec`` unchanged when none can, or when it already uses them."""
    used = {name for entry in spec if entry is not None
            for name in (entry if isinstance(entry, tuple) else (entry,))}
    if used & set(over):
        return spec
    size = int(np.prod([mesh.shape[name] for name in over]))

    def already(dim):
        entry = spec[dim]
        return () if entry is None else entry if isinstance(entry, tuple) else (entry,)

    def fits(dim):
        split = int(np.prod([mesh.shape[name] for name in already(dim)]))
        return shape[dim] % (split * size) == 0

    free = [d for d in range(len(shape)) if spec[d] is None and fits(d)]
    taken = [d for d in range(len(shape)) if spec[d] is not None and fits(d)]
    if not free + taken:
        return spec
    dim = (free + taken)[0]
    axes = already(dim) + over
    entries = list(spec)
    entries[dim] = axes[0] if len(axes) == 1 else axes
    return PartitionSpec(*entries)
