"""Data-parallel ``pmap`` and sharded ``jit`` on the 8 simulated CPU devices of conftest.

The problem: least squares ``mean_i ½‖x_i W + b - y_i‖²`` over a batch of 64 rows, with
``W`` of shape (16, 3) (shardable along its first axis over 8 devices) and ``b`` of shape (3,).
Both distributed runs must give the single-device full-batch numbers to float64 rounding
(rtol 1e-12; the reductions are split differently, so the last bits may differ).
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import gradchain as gc
from registry import ADAM, SGD_MOMENTUM

DEVICES = 8
STEPS = 4
ROWS, FEATURES, OUTPUTS = 64, 16, 3
X = jnp.asarray(np.sin(np.arange(ROWS * FEATURES) * 0.37).reshape(ROWS, FEATURES))
Y = jnp.asarray(np.cos(np.arange(ROWS * OUTPUTS) * 0.11).reshape(ROWS, OUTPUTS))
PARAMS = {"w": jnp.asarray(np.linspace(-0.5, 0.5, FEATURES * OUTPUTS).reshape(FEATURES, OUTPUTS)),
          "b": jnp.asarray([0.1, -0.2, 0.3])}
CONFIGS = [ADAM, SGD_MOMENTUM]


def batch_loss(params, x, y):
    residual = x @ params["w"] + params["b"] - y
    return 0.5 * jnp.mean(jnp.sum(residual * residual, axis=-1))


def make_step(config, axis_name=None):
    tx = config.gradchain()

    def step(params, state, x, y):
        grads = jax.grad(batch_loss)(params, x, y)
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
        updates, state = tx.update(grads, state, params)
        return gc.apply_updates(params, updates), state

    return step


def run(step, params, state, x, y):
    for _ in range(STEPS):
        params, state = step(params, state, x, y)
    return params, state


@functools.lru_cache(maxsize=None)
def single_device(config):
    """The reference: one device, the full batch."""
    return run(jax.jit(make_step(config)), PARAMS, config.gradchain().init(PARAMS), X, Y)


def test_simulated_devices_are_there():
    assert jax.device_count() == DEVICES


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_pmap_with_averaged_gradients_equals_one_device(config):
    replicate = functools.partial(jax.tree.map, lambda x: jnp.broadcast_to(x, (DEVICES, *x.shape)))
    params = replicate(PARAMS)
    state = replicate(config.gradchain().init(PARAMS))
    x, y = X.reshape(DEVICES, -1, FEATURES), Y.reshape(DEVICES, -1, OUTPUTS)
    step = jax.pmap(make_step(config, axis_name="devices"), axis_name="devices")
    params, state = run(step, params, state, x, y)
    expected_params, expected_state = single_device(config)
    for device in range(DEVICES):
        chex.assert_trees_all_close(jax.tree.map(lambda leaf: leaf[device], (params, state)),
                                    (expected_params, expected_state), rtol=1e-12, atol=0)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_jit_on_sharded_params_and_state_equals_one_device(config):
    mesh = Mesh(np.array(jax.devices()), ("model",))
    rows = NamedSharding(mesh, PartitionSpec("model"))
    replicated = NamedSharding(mesh, PartitionSpec())

    def placement(leaf):
        """Split a leaf whose first axis is a multiple of 8 (W and its moments); replicate the
        rest (b, its moments, step counts, hyperparameters)."""
        return rows if jnp.ndim(leaf) and leaf.shape[0] % DEVICES == 0 else replicated

    def place(tree):
        return jax.tree.map(lambda leaf: jax.device_put(leaf, placement(leaf)), tree)

    params, state = run(jax.jit(make_step(config)), place(PARAMS),
                        place(config.gradchain().init(PARAMS)),
                        jax.device_put(X, replicated), jax.device_put(Y, replicated))
    chex.assert_trees_all_close((params, state), single_device(config), rtol=1e-12, atol=0)

    split = [leaf for leaf in jax.tree.leaves(state) if placement(leaf) is rows]
    assert split, "the optimizer state has no leaf shaped like W"
    for leaf in jax.tree.leaves((params, state)):
        assert leaf.sharding.is_equivalent_to(placement(leaf), leaf.ndim), (
            leaf.shape, leaf.sharding)
    for leaf in split:
        assert {s.data.shape for s in leaf.addressable_shards} == {(FEATURES // DEVICES,
                                                                    OUTPUTS)}
