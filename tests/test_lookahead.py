"""Lookahead as a drop-in transformation on ordinary params, against Optax's ``lookahead`` on
``LookaheadParams(fast, slow)``: gradchain's params follow Optax's fast params, its state's slow
weights follow Optax's slow params."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
from problems import initial_params, loss, max_relative_error, trajectory

STEPS = 200
SYNC, ALPHA = 5, 0.5


def optax_lookahead_run(inner, dtype, reset_state=False, grads=None):
    """Optax's lookahead, gradients taken at the fast params (closed loop) or read from
    ``grads`` (open loop). Returns ``(fast, slow, grads)``: dicts of ``(STEPS, n)`` arrays."""
    tx = optax.lookahead(inner, SYNC, ALPHA, reset_state=reset_state)
    params = optax.LookaheadParams.init_synced(initial_params(dtype))

    def step(carry, g_in):
        p, s = carry
        g = jax.grad(loss)(p.fast) if g_in is None else g_in
        u, s = tx.update(g, s, p)
        p = optax.apply_updates(p, u)
        return (p, s), (p.fast, p.slow, g)

    xs = None if grads is None else {k: jnp.asarray(v, dtype) for k, v in grads.items()}
    run = jax.jit(lambda p, s, xs: jax.lax.scan(step, (p, s), xs, length=STEPS)[1])
    return run(params, tx.init(params), xs)


def slow_weights_trajectory(tx, dtype):
    """gradchain's params and the state's slow weights after each step (closed loop)."""

    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p)
        p = gc.apply_updates(p, u)
        return (p, s), (p, s.slow)

    params = initial_params(dtype)
    run = jax.jit(lambda p, s: jax.lax.scan(step, (p, s), None, length=STEPS)[1])
    return run(params, tx.init(params))


@pytest.mark.parametrize("reset_state", [False, True], ids=["keep-state", "reset-state"])
def test_float64_closed_loop_matches_optax(reset_state):
    fast, slow, _ = optax_lookahead_run(optax.adam(0.03), jnp.float64, reset_state)
    params, slow_state = slow_weights_trajectory(
        gc.lookahead(gc.adam(0.03), SYNC, ALPHA, reset_state=reset_state), jnp.float64)
    assert max_relative_error(params, fast) <= 1e-10
    assert max_relative_error(slow_state, slow) <= 1e-10


def test_float32_open_loop_matches_optax():
    fast, _, grads = optax_lookahead_run(optax.adam(0.03), jnp.float32)
    params, _ = trajectory(gc.lookahead(gc.adam(0.03), SYNC, ALPHA), jnp.float32, STEPS,
                           grads=grads)
    assert all(leaf.dtype == jnp.float32 for leaf in params.values())
    assert max_relative_error(params, fast) <= 1e-5


def test_params_land_on_the_slow_weights_at_every_sync():
    params, slow = slow_weights_trajectory(gc.lookahead(gc.sgd(0.05), SYNC, ALPHA),
                                           jnp.float64)
    synced = np.arange(STEPS) % SYNC == SYNC - 1
    for key in params:
        np.testing.assert_allclose(params[key][synced], slow[key][synced], rtol=0, atol=1e-15)
        assert np.all(np.abs(params[key][~synced] - slow[key][~synced]).max(axis=1) > 0)


def test_step_size_one_is_the_inner_optimizer_batched_over_step_sizes():
    """α = 1 moves the slow weights onto the fast ones: Lookahead is then the inner optimizer.
    Both α run in one vmapped program (the step size is a traced hyperparameter)."""
    runs = jax.vmap(lambda alpha: trajectory(gc.lookahead(gc.adam(0.03), SYNC, alpha),
                                             jnp.float64, STEPS)[0])(jnp.asarray([1.0, 0.5]))
    inner, _ = trajectory(gc.adam(0.03), jnp.float64, STEPS)
    assert max_relative_error(jax.tree.map(lambda x: x[0], runs), inner) <= 1e-12
    assert max_relative_error(jax.tree.map(lambda x: x[1], runs), inner) > 1e-3


def test_update_without_params_raises():
    tx = gc.lookahead(gc.sgd(0.1))
    grads = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="lookahead: update needs params"):
        tx.update(grads, tx.init(grads))


@pytest.mark.parametrize("kwargs, message", [
    ({"sync_period": 0}, r"lookahead: sync_period=0 is out of range"),
    ({"sync_period": 2.5}, r"lookahead: sync_period=2.5 is not an integer"),
    ({"slow_step_size": 1.5}, r"lookahead: slow_step_size=1.5 is out of range"),
])
def test_invalid_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gc.lookahead(gc.sgd(0.1), **kwargs)


def test_works_inside_nnx_optimizer():
    """The drop-in claim: ``nnx.Optimizer`` holds ordinary params; no ``LookaheadParams``."""
    from flax import nnx

    model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, gc.lookahead(gc.sgd(0.1), 2, 0.5), wrt=nnx.Param)
    x, y = jnp.ones((4, 3)), jnp.zeros((4, 1))
    start = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
    grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)
    optimizer.update(model, grads)
    # Two SGD steps on the same gradient, then halfway back: start - 0.5 · 2 · 0.1 · g.
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, start, grads)
    chex.assert_trees_all_close(nnx.state(model, nnx.Param), expected, rtol=1e-6)
