"""``gc.flatten``: an optimizer on one vector per dtype, its state in a few buffers."""

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

import gradchain as gc
from gradchain.execution import cpu_kernels


def _tree(dtype=jnp.float32, leaves=7):
    key = jax.random.PRNGKey(3)
    shapes = [(3, 2), (4,), (), (2, 2, 2), (5,), (1, 3), (6,)][:leaves]
    return {f"p{k}": jax.random.normal(jax.random.fold_in(key, k), s, dtype)
            for k, s in enumerate(shapes)}


def _run(tx, params, steps=3):
    """``steps`` jitted updates with gradients ``sin(3 p)``; the params after each."""
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.tree.map(lambda p: jnp.sin(3 * p), params), state,
                                   params)
        return gc.apply_updates(params, updates), state

    out = []
    for _ in range(steps):
        params, state = step(params, state)
        out.append(params)
    return out, state


def test_equals_optax_flatten_and_the_optimizer_on_the_leaves():
    """The same Adam as Optax's ``flatten(adam)`` to the bit, and as ``adam`` on the leaves to
    float32 rounding; the state holds one vector per moment."""
    params = _tree()
    got, state = _run(gc.flatten(gc.adam(1e-2)), params)
    chex.assert_trees_all_equal(got, _run(optax.flatten(optax.adam(1e-2)), params)[0])
    chex.assert_trees_all_close(got, _run(gc.adam(1e-2), params)[0], rtol=0, atol=2e-7)
    size = sum(p.size for p in jax.tree.leaves(params))
    assert [m.shape for m in jax.tree.leaves(state) if m.ndim] == [(size,), (size,)]


def test_float64_on_the_leaves_to_rounding():
    with jax.enable_x64(True):
        params = _tree(jnp.float64)
        got = _run(gc.flatten(gc.adamw(1e-2, weight_decay=0.1)), params)[0]
        chex.assert_trees_all_close(
            got, _run(gc.adamw(1e-2, weight_decay=0.1), params)[0], rtol=1e-14, atol=0)


def test_each_dtype_keeps_its_vector_and_its_dtype():
    """bfloat16 beside float32: two vectors, updates in each leaf's dtype, and the bfloat16
    leaves updated as ``adam`` updates them alone (Optax's ``flatten`` would promote them)."""
    params = {**_tree(jnp.float32, 3), "half": _tree(jnp.bfloat16, 4)}
    tx = gc.flatten(gc.adam(1e-2))
    state = tx.init(params)
    assert sorted(state.inner_state[1].branches[0].ema) == ["bfloat16", "float32"]
    got = _run(tx, params)[0][-1]
    chex.assert_trees_all_equal_dtypes(got, params)
    expected = _run(gc.adam(1e-2), params["half"])[0][-1]
    chex.assert_trees_all_close(got["half"], expected, rtol=0, atol=1e-2)


def test_the_state_does_not_grow_with_the_leaves():
    counts = [len(jax.tree.leaves(gc.flatten(gc.adam(1e-3)).init(
        {f"w{k}": jnp.zeros((4, 2)) for k in range(n)}))) for n in (1, 50)]
    assert counts[0] == counts[1]


def test_set_hyperparams_reaches_the_inner_optimizer():
    params = _tree()
    tx = gc.flatten(gc.sgd(0.1))
    state = gc.set_hyperparams(tx, tx.init(params), learning_rate=0.5)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = jax.jit(tx.update)(grads, state, params)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda g: -0.5 * g, grads))


@pytest.mark.skipif(cpu_kernels.compiler() is None,
                    reason="no C++ compiler: one_pass runs XLA's code, and require=True raises")
@pytest.mark.optimized_xla
def test_one_pass_inside_gives_the_same_bits():
    """``flatten(one_pass(adam))``: one loop over each vector, XLA's numbers."""
    params = _tree()
    chex.assert_trees_all_equal(_run(gc.flatten(gc.one_pass(gc.adam(1e-2), require=True)),
                                     params)[0],
                                _run(gc.flatten(gc.adam(1e-2)), params)[0])


def test_bad_trees_are_refused_by_name():
    params = _tree()
    tx = gc.flatten(gc.adam(1e-2))
    state = tx.init(params)
    with pytest.raises(ValueError, match="flatten"):
        tx.update(params, state, {"other": jnp.zeros(3)})
    mixed = {**params, "p0": params["p0"].astype(jnp.bfloat16)}
    with pytest.raises(ValueError, match="flatten: the params of the float32 updates are of "
                                         "several dtypes"):
        tx.update(params, state, mixed)
    with pytest.raises(TypeError, match="flatten"):
        gc.flatten(lambda x: x)
