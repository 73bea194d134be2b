"""Gradient accumulation: k micro-batches step like one concatenated batch; Optax's
``MultiSteps`` numbers (constant and scheduled k, skipped micro-batches); the buffer's dtype and
bytes; bfloat16 params; ``k < 1`` refused; a failed call changes no state; k changed at run time;
Flax's TrainState, and ``nnx.Optimizer`` with skipping, accumulation and clipping stacked."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.training import train_state

import gradchain as gc
from gradchain.clipping.global_norm import clip_by_global_norm
from gradchain.introspection.find import find_state
from gradchain.wrappers.accumulate import MultiSteps, accumulate_gradients
from gradchain.wrappers.finite import skip_non_finite

RNG = np.random.default_rng(0)
FEATURES = jnp.asarray(RNG.normal(size=(12, 3)))
TARGETS = jnp.asarray(RNG.normal(size=12))
START = {"w": jnp.array([0.5, -0.3, 0.1]), "b": jnp.array(0.2)}


def batch_loss(params, x, y):
    """Mean over the examples, so the mean of equal micro-batch gradients is the batch's."""
    return jnp.mean(jnp.log(jnp.cosh(x @ params["w"] + params["b"] - y)))


@jax.jit
def accumulated_and_full_batch_runs(start):
    k, steps = 3, 4
    tx, reference = accumulate_gradients(gc.adam(0.1), k), gc.adam(0.1)

    def micro(carry, i):
        params, state = carry
        rows = (i % k) * 4 + jnp.arange(4)
        g = jax.grad(batch_loss)(params, FEATURES[rows], TARGETS[rows])
        updates, state = tx.update(g, state, params)
        return (gc.apply_updates(params, updates), state), params

    def full(carry, _):
        params, state = carry
        updates, state = reference.update(jax.grad(batch_loss)(params, FEATURES, TARGETS),
                                          state, params)
        return (gc.apply_updates(params, updates), state), None

    (ours, state), seen = jax.lax.scan(micro, (start, tx.init(start)), jnp.arange(k * steps))
    (theirs, _), _ = jax.lax.scan(full, (start, reference.init(start)), length=steps)
    return ours, theirs, seen, state


def test_k_micro_batches_equal_one_step_on_the_concatenated_batch():
    ours, theirs, seen, state = accumulated_and_full_batch_runs(START)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-13, atol=1e-15)
    assert not np.allclose(ours["w"], START["w"])
    # The params move only on every third call: the micro-batches of one step see one point.
    for i in range(12):
        chex.assert_trees_all_equal(jax.tree.map(lambda x: x[i], seen),
                                    jax.tree.map(lambda x: x[i - i % 3], seen))
    assert (int(state.mini_step), int(state.gradient_step)) == (0, 4)
    chex.assert_trees_all_equal(state.acc_grads, jax.tree.map(jnp.zeros_like, START))


@pytest.mark.parametrize("every_k", [3, lambda step: 1 + step % 3], ids=["constant", "schedule"])
def test_multi_steps_matches_optax(every_k):
    """Open loop on float32 gradients, one of them holding a NaN that ``skip_not_finite``
    rejects; the updates, counters and ``has_updated`` agree with Optax's."""
    params = {"a": jnp.linspace(-1.0, 1.0, 6, dtype=jnp.float32).reshape(2, 3),
              "b": jnp.ones(3, jnp.float32)}
    grads = jax.tree.map(lambda p: jnp.asarray(RNG.normal(size=(10,) + p.shape), p.dtype), params)
    grads["b"] = grads["b"].at[4, 1].set(jnp.nan)

    def run(multi):
        def step(state, g):
            updates, state = multi.update(g, state, params)
            return state, (updates, multi.has_updated(state), state.mini_step,
                           state.gradient_step)
        return jax.lax.scan(step, multi.init(params), grads)[1]

    ours, theirs = jax.jit(lambda: (
        run(MultiSteps(gc.adam(0.1), every_k, should_skip_update_fn=optax.skip_not_finite)),
        run(optax.MultiSteps(optax.adam(0.1), every_k,
                             should_skip_update_fn=optax.skip_not_finite))))()
    chex.assert_trees_all_close(ours, theirs, rtol=1e-6, atol=1e-7)
    assert int(jnp.sum(ours[1])) >= 3


def test_buffer_dtype_and_bytes_with_bfloat16_params():
    params = {"w": jnp.ones((64, 32), jnp.bfloat16), "b": jnp.zeros(32, jnp.bfloat16)}
    size = 64 * 32 + 32
    default = accumulate_gradients(gc.adam(1e-2), 2)
    low = accumulate_gradients(gc.adam(1e-2), 2, dtype=jnp.bfloat16)
    assert find_state(default.init(params), "acc_grads")["w"].dtype == jnp.float32
    assert sum(x.nbytes for x in jax.tree.leaves(
        find_state(default.init(params), "acc_grads"))) == 4 * size
    assert sum(x.nbytes for x in jax.tree.leaves(
        find_state(low.init(params), "acc_grads"))) == 2 * size
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    for tx in (default, low):
        step = jax.jit(tx.update)
        state = tx.init(params)
        held, state = step(grads, state, params)
        taken, state = step(grads, state, params)
        assert jax.tree.map(lambda u: u.dtype, taken) == jax.tree.map(lambda p: p.dtype, params)
        chex.assert_trees_all_equal(held, jax.tree.map(jnp.zeros_like, params))
        chex.assert_trees_all_close(taken["w"], jnp.full((64, 32), -1e-2, jnp.bfloat16),
                                    rtol=1e-2)


def test_k_below_one_or_fractional_is_refused():
    with pytest.raises(ValueError, match=r"accumulate_gradients: k=0 is out of range; expected "
                                         r"k in \[1, inf\)"):
        accumulate_gradients(gc.sgd(0.1), 0)
    with pytest.raises(ValueError, match=r"accumulate_gradients: k=2.5 is not an integer"):
        accumulate_gradients(gc.sgd(0.1), 2.5)
    with pytest.raises(ValueError, match=r"MultiSteps: every_k_schedule=-1 is out of range"):
        MultiSteps(gc.sgd(0.1), -1)


def test_failed_update_changes_no_state():
    tx = accumulate_gradients(gc.sgd(0.1, momentum=0.9), 2)
    grads = jax.tree.map(jnp.ones_like, START)
    _, state = tx.update(grads, tx.init(START), START)
    snapshot = jax.tree.map(np.array, state)
    with pytest.raises(ValueError, match=r"accumulate_gradients: the updates do not match the "
                                         r"accumulation buffer"):
        tx.update({"w": grads["w"]}, state, START)
    chex.assert_trees_all_equal(state, snapshot)
    chex.assert_trees_all_equal(tx.update(grads, state, START), tx.update(grads, snapshot, START))


def test_flax_train_state_steps_every_k_calls():
    tx = accumulate_gradients(gc.sgd(0.5), 2)
    ts = train_state.TrainState.create(apply_fn=None, params=START, tx=tx)
    apply = jax.jit(lambda ts, g: ts.apply_gradients(grads=g))
    ts = apply(ts, jax.tree.map(jnp.ones_like, START))
    chex.assert_trees_all_equal(ts.params, START)
    ts = apply(ts, jax.tree.map(lambda x: 3 * jnp.ones_like(x), START))
    chex.assert_trees_all_close(ts.params, jax.tree.map(lambda x: x - 0.5 * 2.0, START),
                                rtol=1e-15)
    assert repr(tx).splitlines()[0] == "accumulate_gradients(k=2, average=True)"


def test_k_changed_in_the_state_takes_effect_without_recompiling():
    tx = accumulate_gradients(gc.sgd(1.0), 2)
    traces = []
    step = jax.jit(lambda g, s: (traces.append(1), tx.update(g, s))[1])
    grads = {"w": jnp.ones(2)}
    state = tx.init(grads)
    state = state._replace(hyperparams={"k": 2 * state.hyperparams["k"]})  # k = 4
    emitted = []
    for _ in range(8):
        updates, state = step(grads, state)
        emitted.append(bool(jnp.any(updates["w"] != 0)))
    assert emitted == [False, False, False, True] * 2 and len(traces) == 1


class Net(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(3, 4, rngs=rngs)
        self.out = nnx.Linear(4, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def stacked():
    """Skip a non-finite micro-batch, accumulate 2, clip the mean, then Adam."""
    return skip_non_finite(accumulate_gradients(
        gc.chain(clip_by_global_norm(0.1), gc.adam(1e-2)), 2))


@nnx.jit
def nnx_step(model, optimizer, x, poison):
    grads = nnx.grad(lambda m: jnp.mean((m(x) - 1.0) ** 2))(model)
    grads = jax.tree.map(lambda g: jnp.where(poison, jnp.nan, g), grads)
    optimizer.update(model, grads)


def test_nnx_optimizer_with_skipping_accumulation_and_clipping():
    model = Net(nnx.Rngs(0))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    optimizer = nnx.Optimizer(model, stacked(), wrt=nnx.Param)
    batches = [FEATURES[4 * i:4 * i + 4].astype(jnp.float32) for i in range(3)]
    poisoned = [False, True, False, False, True, False]
    for i, poison in enumerate(poisoned):
        nnx_step(model, optimizer, batches[i % 3], jnp.asarray(poison))

    def pure_loss(p, x):
        hidden = jnp.tanh(x @ p["hidden"]["kernel"] + p["hidden"]["bias"])
        return jnp.mean((hidden @ p["out"]["kernel"] + p["out"]["bias"] - 1.0) ** 2)

    tx = stacked()
    state, update = tx.init(params), jax.jit(tx.update)
    for i, poison in enumerate(poisoned):
        if not poison:
            updates, state = update(jax.grad(pure_loss)(params, batches[i % 3]), state, params)
            params = optax.apply_updates(params, updates)
    chex.assert_trees_all_close(nnx.to_pure_dict(nnx.state(model, nnx.Param)), params,
                                rtol=1e-6, atol=1e-7)
    opt_state = nnx.as_pure(optimizer.opt_state)
    assert int(find_state(opt_state, "total_notfinite")) == 2
    assert int(find_state(opt_state, "gradient_step")) == 2


def test_state_can_be_donated_to_a_jitted_step():
    """Every array of the initial state is its own buffer (``mini_step`` and
    ``gradient_step`` once shared one, which XLA refuses to donate twice)."""
    tx = MultiSteps(gc.adam(0.1), 2)
    params = {"w": jnp.array([0.5, -0.3, 0.1])}

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
        return gc.apply_updates(params, updates), state

    donated = jax.jit(step, donate_argnums=(0, 1))
    params, state = donated(params, tx.init(params))
    params, state = donated(params, state)
    assert int(state.gradient_step) == 1
