"""``axis_name=``: reductions over a leaf or the tree give the unsplit numbers when the params are
split over 8 devices, under ``jax.shard_map`` and under ``pmap``.

Every leaf is split along its first axis (sizes 16, 8, 8: 2, 1, 1 rows per device), and each
transformation runs three steps on its part with ``axis_name`` naming the split; the reference is
the same three steps on the whole leaves on one device, float64. Without ``axis_name`` each
device reduces over its own part only: the test shows that error too.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import gradchain as gc

DEVICES = 8
AXIS = "devices"
SHAPES = {"w": (16, 3), "b": (8,), "h": (8, 2, 3)}
STEPS = 3
MESH = Mesh(np.array(jax.devices()), (AXIS,))
ROWS = PartitionSpec(AXIS)


def tree(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(scale * rng.normal(size=s)) for k, s in SHAPES.items()}


PARAMS = tree(0)
GRADS = jax.tree.map(lambda *steps: jnp.stack(steps), *[tree(1 + t, scale=3.0)
                                                        for t in range(STEPS)])
BAD_GRADS = {**GRADS, "w": GRADS["w"].at[1, 0, 0].set(jnp.nan)}  # step 1, device 0's part
STEPS_SPLIT = PartitionSpec(None, AXIS)  # gradients: (step, rows, ...)

# name -> (transformation given axis_name, gradients); each row changes something at every step
TRANSFORMATIONS = {
    "clip_by_global_norm": (lambda a: gc.chain(gc.clip_by_global_norm(2.0, axis_name=a),
                                               gc.sgd(0.1)), GRADS),
    "clip_by_block_rms": (lambda a: gc.chain(gc.clip_by_block_rms(0.8, axis_name=a),
                                             gc.sgd(0.1)), GRADS),
    "adaptive_grad_clip": (lambda a: gc.chain(gc.adaptive_grad_clip(0.3, axis_name=a),
                                              gc.sgd(0.1)), GRADS),
    "scale_by_trust_ratio": (lambda a: gc.chain(gc.scale_by_trust_ratio(
        trust_coefficient=0.1, eps=1e-3, axis_name=a), gc.sgd(0.1)), GRADS),
    "lamb": (lambda a: gc.lamb(0.05, weight_decay=0.01, axis_name=a), GRADS),
    "swats": (lambda a: gc.swats(0.05, tolerance=1.0, axis_name=a), GRADS),
    "skip_non_finite": (lambda a: gc.skip_non_finite(gc.adam(0.05), axis_name=a), BAD_GRADS),
    "apply_if_finite": (lambda a: gc.apply_if_finite(gc.sgd(0.1, momentum=0.9), 3,
                                                     axis_name=a), BAD_GRADS),
    # Issue 11 (k9): distances, inner products and l1 norms over the whole tree.
    "dog": (lambda a: gc.dog(0.5, init_step=("heuristic", 1e-2), axis_name=a), GRADS),
    "dowg": (lambda a: gc.dowg(0.5, axis_name=a), GRADS),
    "prodigy": (lambda a: gc.prodigy(estim_lr0=1e-3, axis_name=a), GRADS),
    "dadapt_adamw": (lambda a: gc.dadapt_adamw(estim_lr0=1e-3, axis_name=a), GRADS),
    "mechanize": (lambda a: gc.mechanize(gc.sgd(0.1, momentum=0.9), s_init=1e-2, axis_name=a),
                  GRADS),
}


def run_all(params, states, grads_by_row, axis_name):
    """Each row's params and state after ``STEPS`` steps from ``states``, and the global norm
    of the first gradients."""
    out = {}
    for name, (make, _) in TRANSFORMATIONS.items():
        tx = make(axis_name)

        def step(carry, g):
            p, state = carry
            updates, state = tx.update(g, state, p)
            return (gc.apply_updates(p, updates), state), None

        out[name] = jax.lax.scan(step, (params, states[name]), grads_by_row[name])[0]
    first = jax.tree.map(lambda g: g[0], grads_by_row["lamb"])
    return out, gc.global_norm(first, axis_name=axis_name)


GRADS_BY_ROW = {name: grads for name, (_, grads) in TRANSFORMATIONS.items()}
STATES = {name: make(None).init(PARAMS) for name, (make, _) in TRANSFORMATIONS.items()}


@functools.lru_cache(maxsize=None)
def unsplit():
    return jax.jit(run_all, static_argnums=3)(PARAMS, STATES, GRADS_BY_ROW, None)


def split_rows(tree_, spec=ROWS):
    return jax.device_put(tree_, NamedSharding(MESH, spec))


def split_states():
    """Each row's state as ``state_sharding`` places it for the split params (statistics split
    like them, scalars replicated), and the ``PartitionSpec``s of that placement.

    The state is created outside ``shard_map`` and passed in: ``init`` inside it would make
    zeros that do not vary over the axis, while the updated statistics do, and a ``lax.cond``
    (``skip_non_finite``, ``swats``) needs the same types on both sides."""
    shardings = {name: gc.state_sharding(make(None), split_rows(PARAMS))
                 for name, (make, _) in TRANSFORMATIONS.items()}
    specs = jax.tree.map(lambda s: s.spec, shardings)
    return jax.device_put(STATES, shardings), specs


def test_the_rows_change_something_and_skip_a_step():
    out, _ = unsplit()
    for name, (params, state) in out.items():
        assert all(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(params),
                                                         jax.tree.leaves(PARAMS))), name
    for name in ("skip_non_finite", "apply_if_finite"):
        assert int(out[name][1].total_notfinite) == 1


def test_shard_map_with_axis_name_gives_the_unsplit_numbers():
    states, specs = split_states()
    step = jax.jit(jax.shard_map(
        functools.partial(run_all, axis_name=AXIS), mesh=MESH,
        in_specs=(ROWS, specs, STEPS_SPLIT),
        out_specs=({name: (ROWS, specs[name]) for name in specs}, PartitionSpec())))
    out, norm = step(split_rows(PARAMS), states, split_rows(GRADS_BY_ROW, STEPS_SPLIT))
    expected, expected_norm = unsplit()
    np.testing.assert_allclose(norm, expected_norm, rtol=1e-13)
    for name in TRANSFORMATIONS:
        chex.assert_trees_all_close(out[name], expected[name], rtol=1e-11, atol=1e-14,
                                    custom_message=name)


def test_pmap_with_axis_name_gives_the_unsplit_numbers():
    def per_device(x):
        return x.reshape(DEVICES, -1, *x.shape[1:])

    def from_init(params, grads_by_row):
        states = {name: make(AXIS).init(params) for name, (make, _) in TRANSFORMATIONS.items()}
        return run_all(params, states, grads_by_row, AXIS)

    out, norm = jax.pmap(from_init, axis_name=AXIS, in_axes=(0, 1))(
        jax.tree.map(per_device, PARAMS),
        jax.tree.map(lambda g: jax.vmap(per_device)(g), GRADS_BY_ROW))
    expected, expected_norm = unsplit()
    np.testing.assert_allclose(norm, np.full(DEVICES, expected_norm), rtol=1e-13)
    for name in TRANSFORMATIONS:
        whole = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), out[name][0])
        chex.assert_trees_all_close(whole, expected[name][0], rtol=1e-11, atol=1e-14,
                                    custom_message=name)


@pytest.mark.parametrize("name", ["clip_by_global_norm", "lamb", "skip_non_finite"])
def test_without_axis_name_each_device_reduces_over_its_part(name):
    """The error ``axis_name`` removes: per-device norms (and a per-device skip decision)."""
    make, grads = TRANSFORMATIONS[name]
    states, specs = split_states()

    def local(params, state, grads):
        tx = make(None)
        for t in range(STEPS):
            updates, state = tx.update(jax.tree.map(lambda g: g[t], grads), state, params)
            params = gc.apply_updates(params, updates)
        return params

    params = jax.jit(jax.shard_map(local, mesh=MESH,
                                   in_specs=(ROWS, specs[name], STEPS_SPLIT),
                                   out_specs=ROWS, check_vma=False))(
        split_rows(PARAMS), states[name], split_rows(grads, STEPS_SPLIT))
    expected = unsplit()[0][name][0]
    error = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
                for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(expected)))
    assert error > 1e-3, error


@pytest.mark.parametrize("make", [
    lambda: gc.clip_by_global_norm(1.0, axis_name=0),
    lambda: gc.clip_by_block_rms(1.0, axis_name=("data", 1)),
    lambda: gc.adaptive_grad_clip(0.1, axis_name=["data"]),
    lambda: gc.scale_by_trust_ratio(axis_name=()),
    lambda: gc.skip_non_finite(gc.sgd(0.1), axis_name=1.5),
    lambda: gc.global_norm({}, axis_name=3),
])
def test_axis_name_must_name_an_axis(make):
    with pytest.raises(TypeError, match="axis_name=.* is not a mesh axis name"):
        make()


def test_axis_name_is_shown():
    assert "axis_name='data'" in repr(gc.clip_by_global_norm(1.0, axis_name="data"))
    assert "axis_name" not in repr(gc.clip_by_global_norm(1.0))
