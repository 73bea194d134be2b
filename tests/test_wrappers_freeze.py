"""Freezing: frozen leaves get zero updates and hold no optimizer state (freezing half the model
halves Adam's state bytes), the others are trained exactly as alone; Optax's ``freeze`` and
``selective_transform`` numbers; ``nnx.Optimizer`` with frozen early layers."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import gradchain as gc
from gradchain.introspection.describe import state_bytes
from gradchain.wrappers.freeze import freeze, freeze_where, selective_transform, set_to_zero


def layered_params(dtype=jnp.float32):
    """Four equal layers: the first two ("early") are half of the model."""
    rng = np.random.default_rng(0)
    return {f"layer_{i}": {"kernel": jnp.asarray(rng.normal(size=(16, 16)), dtype),
                           "bias": jnp.asarray(rng.normal(size=16), dtype)} for i in range(4)}


def is_early(path, leaf):
    return path[0] in ("layer_0", "layer_1")


def test_freezing_half_the_model_halves_adam_state_memory():
    params = layered_params()
    param_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
    full = state_bytes(jax.eval_shape(gc.adam(1e-3).init, params))
    frozen = state_bytes(jax.eval_shape(freeze_where(gc.adam(1e-3), is_early).init, params))
    # Adam: two moments per parameter, plus scalars (7 hyperparameters, their recorded
    # constructor values, 2 step counts: 120 B under float64).
    scalars = full - 2 * param_bytes
    assert 0 <= scalars < 200
    assert frozen - scalars == (full - scalars) // 2 == param_bytes
    # Optax's freeze only zeroes the updates: chained before Adam, Adam keeps every moment.
    mask = jax.tree_util.tree_map_with_path(
        lambda path, x: is_early(tuple(k.key for k in path), x), params)
    chained = state_bytes(jax.eval_shape(optax.chain(optax.freeze(mask), optax.adam(1e-3)).init,
                                         params))
    assert chained >= 2 * param_bytes


def test_frozen_leaves_get_zero_updates_the_others_train_as_alone():
    params = layered_params(jnp.float64)
    grads = jax.tree.map(jnp.sin, params)
    tx = freeze_where(gc.adam(1e-2), is_early)
    late = {k: v for k, v in params.items() if k in ("layer_2", "layer_3")}
    alone = gc.adam(1e-2)
    state, alone_state = tx.init(params), alone.init(late)
    update, alone_update = jax.jit(tx.update), jax.jit(alone.update)
    for _ in range(3):
        updates, state = update(grads, state, params)
        expected, alone_state = alone_update({k: grads[k] for k in late}, alone_state, late)
    for name in ("layer_0", "layer_1"):
        chex.assert_trees_all_equal(updates[name], jax.tree.map(jnp.zeros_like, params[name]))
    chex.assert_trees_all_equal({k: updates[k] for k in late}, expected)


def test_freezing_everything_keeps_no_per_leaf_state():
    params = layered_params()
    tx = freeze_where(gc.adam(1e-3), True)
    state = tx.init(params)
    assert all(x.ndim == 0 for x in jax.tree.leaves(state))
    updates, _ = tx.update(params, state, params)
    chex.assert_trees_all_equal(updates, jax.tree.map(jnp.zeros_like, params))


def test_optax_freeze_and_selective_transform_numbers():
    params = layered_params(jnp.float64)
    grads = jax.tree.map(jnp.cos, params)
    mask = {"layer_0": True, "layer_1": {"kernel": True, "bias": False}, "layer_2": False,
            "layer_3": False}
    pairs = [(gc.chain(freeze(mask), gc.sgd(0.1)), optax.chain(optax.freeze(mask), optax.sgd(0.1))),
             (selective_transform(gc.adam(0.1), freeze_mask=mask),
              optax.selective_transform(optax.adam(0.1), freeze_mask=mask))]
    results = jax.jit(lambda g, p: [[t.update(g, t.init(p), p)[0] for t in pair]
                                    for pair in pairs])(grads, params)
    for u, v in results:
        chex.assert_trees_all_close(u, v, rtol=1e-14, atol=0)
    assert repr(set_to_zero()) == "set_to_zero()"


def test_frozen_mask_of_the_wrong_structure_names_the_path():
    with pytest.raises(ValueError, match=r"no entry 'layer_3' at <root>"):
        freeze_where(gc.adam(1e-3), {"layer_0": True, "layer_1": True,
                                     "layer_2": False}).init(layered_params())


class Net(nnx.Module):
    def __init__(self, rngs):
        self.early = nnx.Linear(4, 8, rngs=rngs)
        self.late = nnx.Linear(8, 4, rngs=rngs)

    def __call__(self, x):
        return self.late(jax.nn.relu(self.early(x)))


@nnx.jit
def train_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)
    return loss


def test_nnx_optimizer_freezes_the_early_layer():
    model = Net(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, freeze_where(gc.adam(1e-2), lambda path, leaf:
                                                  path[0] == "early"), wrt=nnx.Param)
    early = jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(model.early, nnx.Param)))
    late = jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(model.late, nnx.Param)))
    x = jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(3, 4)
    losses = [float(train_step(model, optimizer, x, jnp.ones((3, 4)))) for _ in range(5)]
    assert losses[-1] < losses[0]
    chex.assert_trees_all_equal(nnx.to_pure_dict(nnx.state(model.early, nnx.Param)), early)
    assert not np.allclose(model.late.kernel[...], late["kernel"])
    moments = sum(x.nbytes for x in jax.tree.leaves(nnx.as_pure(optimizer.opt_state))
                  if x.ndim > 0)
    assert moments == 2 * 4 * (8 * 4 + 4)  # Adam's moments of the late layer only
