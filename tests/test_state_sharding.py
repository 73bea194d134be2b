"""``state_sharding``: the optimizer state created distributed on 8 simulated devices.

ZeRO-1 (``shard_over="data"``, params replicated): device 0 holds at most 1/8 of the state plus
its scalars, and 20 steps give the numbers of the same steps on one device (float64, 1e-9), for
Adam, SGD with momentum, a masked and partitioned optimizer and a chain with clipping. By
default the statistics follow their params' shardings (as ``test_distributed`` places them by
hand); ``jax.ShapeDtypeStruct`` params give the same shardings as arrays.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import gradchain as gc

DEVICES = 8
STEPS = 20
MESH = Mesh(np.array(jax.devices()), ("data",))
REPLICATED = NamedSharding(MESH, P())
# w: split along rows; b: along its only axis; h: its 4 rows do not divide, its 8 columns do
PARAMS = {"w": jnp.asarray(np.linspace(-0.5, 0.5, 48).reshape(16, 3)),
          "b": jnp.asarray(np.linspace(0.2, -0.3, 8)),
          "h": jnp.asarray(np.cos(np.arange(32.0)).reshape(4, 8))}
X = jnp.asarray(np.sin(np.arange(32 * 16) * 0.37).reshape(32, 16))
Y = jnp.asarray(np.cos(np.arange(32 * 3) * 0.11).reshape(32, 3))
T = jnp.asarray([0.3, -0.1, 0.2, 0.5])


def loss(params):
    residual = X @ params["w"] - Y
    return (0.5 * jnp.mean(jnp.sum(residual * residual, axis=-1))
            + 0.5 * jnp.sum((params["h"] @ params["b"] - T) ** 2))


OPTIMIZERS = {
    "adam": lambda: gc.adam(1e-2),
    "sgd_momentum": lambda: gc.sgd(1e-2, momentum=0.9),
    "masked_partition": lambda: gc.chain(
        gc.masked(gc.add_decayed_weights(1e-2), {"w": True, "b": False, "h": True}),
        gc.partition({"adam": gc.adam(1e-2), "sgd": gc.sgd(1e-2, momentum=0.9)},
                     {"w": "adam", "b": "sgd", "h": "adam"})),
    "clipped_adam": lambda: gc.chain(gc.clip_by_global_norm(0.5), gc.adam(1e-2)),
}


def train(tx, params, state):
    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return (gc.apply_updates(params, updates), state), None

    return jax.lax.scan(step, (params, state), None, length=STEPS)[0]


@functools.lru_cache(maxsize=None)
def one_device(name):
    tx = OPTIMIZERS[name]()
    return jax.jit(functools.partial(train, tx))(PARAMS, tx.init(PARAMS))


def device_bytes(tree, device):
    return sum(shard.data.nbytes for leaf in jax.tree.leaves(tree)
               for shard in leaf.addressable_shards if shard.device == device)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_zero1_state_is_split_and_gives_the_one_device_numbers(name):
    tx = OPTIMIZERS[name]()
    params = jax.device_put(PARAMS, REPLICATED)
    shardings = gc.state_sharding(tx, params, shard_over="data")
    state = jax.jit(tx.init, out_shardings=shardings)(params)

    leaves = jax.tree.leaves(state)
    scalars = sum(leaf.nbytes for leaf in leaves if leaf.ndim == 0)
    statistics = sum(leaf.nbytes for leaf in leaves if leaf.ndim > 0)
    assert statistics >= gc.state_bytes(PARAMS)  # the test has something to split
    assert device_bytes(state, jax.devices()[0]) <= statistics / DEVICES + scalars
    for leaf, sharding in zip(leaves, jax.tree.leaves(shardings)):
        assert leaf.sharding == sharding

    run = jax.jit(functools.partial(train, tx), out_shardings=(REPLICATED, shardings))
    params, state = run(params, state)
    chex.assert_trees_all_close((params, state), one_device(name), rtol=1e-9, atol=1e-12)
    assert device_bytes(state, jax.devices()[0]) <= statistics / DEVICES + scalars


def test_statistics_follow_their_params_by_default():
    """W split by rows over "model", b replicated: the moments as ``test_distributed`` places
    them by hand, scalars replicated."""
    mesh = Mesh(np.array(jax.devices()), ("model",))
    placement = {"w": NamedSharding(mesh, P("model", None)), "b": NamedSharding(mesh, P(None)),
                 "h": NamedSharding(mesh, P(None, "model"))}
    params = {k: jax.device_put(v, placement[k]) for k, v in PARAMS.items()}
    shardings = gc.state_sharding(gc.adam(1e-2), params)
    moments = 0
    for path, sharding in jax.tree_util.tree_flatten_with_path(shardings)[0]:
        keys = [getattr(k, "key", getattr(k, "name", None)) for k in path]
        moments += "ema" in keys
        expected = placement[keys[-1]] if "ema" in keys else NamedSharding(mesh, P())
        assert sharding.mesh == mesh and sharding.spec == expected.spec, (keys, sharding)
    assert moments == 2 * len(PARAMS)


def test_shape_dtype_structs_give_the_same_shardings():
    tx = OPTIMIZERS["masked_partition"]()
    params = jax.device_put(PARAMS, REPLICATED)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                           sharding=x.sharding), params)
    assert gc.state_sharding(tx, abstract, "data") == gc.state_sharding(tx, params, "data")
    # no sharding at all: the mesh is given, the params count as replicated
    plain = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), PARAMS)
    assert gc.state_sharding(tx, plain, "data", mesh=MESH) == gc.state_sharding(tx, params,
                                                                                 "data")


def test_split_dimension_on_a_two_axis_mesh():
    """The first free dimension that divides; else the first split one that divides both; else
    the param's own sharding."""
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
    specs = {"w": P("model"), "v": P("model"), "bias": P(), "scale": P(None, "data")}
    shapes = {"w": (16, 6), "v": (8,), "bias": (3,), "scale": (5, 4)}
    params = {k: jax.ShapeDtypeStruct(shapes[k], jnp.float32, sharding=NamedSharding(mesh, s))
              for k, s in specs.items()}
    momentum = gc.find_state(gc.state_sharding(gc.sgd(0.1, momentum=0.9), params, "data"),
                             "buffer")
    assert {k: v.spec for k, v in momentum.items()} == {
        "w": P("model", "data"), "v": P(("model", "data")), "bias": P(None),
        "scale": P(None, "data")}


def test_refused_arguments():
    params = jax.device_put(PARAMS, REPLICATED)
    with pytest.raises(ValueError, match=r"state_sharding: shard_over='batch' is not an axis "
                                         r"of the mesh; expected None, one of \['data'\]"):
        gc.state_sharding(gc.adam(1e-2), params, shard_over="batch")
    with pytest.raises(ValueError, match="state_sharding: no param has a NamedSharding"):
        gc.state_sharding(gc.adam(1e-2), PARAMS)
    other = Mesh(np.array(jax.devices()).reshape(2, 4), ("a", "b"))
    with pytest.raises(ValueError, match="state_sharding: the params and mesh= are on 2 "
                                         "different meshes"):
        gc.state_sharding(gc.adam(1e-2), params, mesh=other)


def is_quantized(x):
    return isinstance(x, gc.QuantizedArray)


def test_quantized_codes_are_split_like_the_moments_they_encode():
    """8-bit moments (``gc.quantized``) keep their codes in the param's shape: ZeRO-1 splits the
    codes like a float moment (``w``'s 16 rows over 8 devices); the per-block scales are
    replicated."""
    q = gc.quantized(min_size=16)
    tx = gc.adam(1e-2, mu_dtype=q, nu_dtype=q)
    params = jax.device_put(PARAMS, REPLICATED)
    shardings = gc.state_sharding(tx, params, shard_over="data")
    quantized = [s for s in jax.tree.leaves(shardings, is_leaf=is_quantized) if is_quantized(s)]
    assert quantized, "the 8-bit moments of w, h and b were not found"
    for entry in quantized:
        assert entry.codes.spec[0] == "data" or entry.codes.spec[1] == "data"
        assert entry.scales.spec == P()
    state = jax.jit(tx.init, out_shardings=shardings)(params)
    codes = gc.find_state(state, "ema", hyperparam="b1", path="w").codes
    assert codes.addressable_shards[0].data.shape == (2, 3)
