"""Every wrapper and clipper under JAX's transformations: ``vmap`` over learning rates, the
derivative of a training run with respect to the learning rate (forward mode, checked against a
central finite difference; reverse mode too for the wrappers built on ``lax.cond``) and ``pmap``
over devices, on ``STEPS`` open-loop float64 steps of ``tests/problems.py`` (for
``skip_non_finite``, one of the gradients holds a NaN); an Orbax checkpoint round trip of a
stacked wrapper state."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import gradchain as gc
from problems import initial_params, loss

STEPS = 4
RATES = jnp.array([0.05, 0.05 * (1 - 1e-6), 0.05 * (1 + 1e-6)])


def first_leaf_is_b(path, leaf):
    return path[0] == "b"


ROWS = {
    "param_groups": lambda lr: gc.param_groups(
        {"w": gc.adam(lr), "b": gc.sgd(lr, momentum=0.9)},
        lambda path, leaf: "b" if first_leaf_is_b(path, leaf) else "w"),
    "apply_where": lambda lr: gc.chain(gc.apply_where(gc.add_decayed_weights(0.1),
                                                      first_leaf_is_b), gc.sgd(lr)),
    "freeze_where": lambda lr: gc.freeze_where(gc.adam(lr), first_leaf_is_b),
    "accumulate_gradients": lambda lr: gc.accumulate_gradients(gc.adam(lr), 2),
    "skip_non_finite": lambda lr: gc.skip_non_finite(gc.adam(lr), give_up_after=1),
    "clipping": lambda lr: gc.chain(gc.clip_by_global_norm(2.0), gc.adaptive_grad_clip(0.5),
                                    gc.clip_by_block_rms(1.0), gc.clip(0.5), gc.sgd(lr)),
}


START = initial_params(jnp.float64)
GRADS = {k: np.stack([np.cos(np.arange(v.size) + 3.0 * t) for t in range(STEPS)])
         for k, v in START.items()}  # open loop: the same gradients for every learning rate
POISONED = {**GRADS, "b": GRADS["b"].copy()}
POISONED["b"][1, 0] = np.nan


def final_loss(make, learning_rate):
    tx = make(learning_rate)
    grads = POISONED if make is ROWS["skip_non_finite"] else GRADS

    def step(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p)
        return (gc.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (START, tx.init(START)), grads)
    return loss(params)


@functools.partial(jax.jit, static_argnums=0)
def batched_and_derivative(make):
    run = functools.partial(final_loss, make)
    return jax.vmap(run)(RATES), jax.jvp(run, (RATES[0],), (jnp.ones_like(RATES[0]),))[1]


@pytest.mark.parametrize("name", ROWS)
def test_vmap_and_derivative_over_the_learning_rate(name):
    batched, derivative = batched_and_derivative(ROWS[name])
    assert np.all(np.isfinite(batched)) and float(batched[0]) != float(loss(START))
    finite_difference = (batched[2] - batched[1]) / (RATES[2] - RATES[1])
    assert np.isfinite(float(derivative)) and float(derivative) != 0.0
    np.testing.assert_allclose(derivative, finite_difference, rtol=1e-4)


@pytest.mark.parametrize("name", ["accumulate_gradients", "skip_non_finite"])
def test_pmap_and_reverse_mode_through_lax_cond(name):
    run = functools.partial(final_loss, ROWS[name])
    per_device = jax.pmap(run)(RATES)
    batched, derivative = batched_and_derivative(ROWS[name])
    chex.assert_trees_all_close(per_device, batched, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(jax.grad(run))(RATES[0]), derivative, rtol=1e-10)


def test_orbax_round_trip_of_a_stacked_wrapper_state(tmp_path):
    """Placeholders (``MaskedNode``) and counters survive a checkpoint; the restored state
    continues exactly as the original."""
    tx = gc.skip_non_finite(gc.accumulate_gradients(ROWS["param_groups"](0.05), 2))
    grads = {k: jnp.asarray(v[0]) for k, v in GRADS.items()}
    update = jax.jit(tx.update)
    _, state = update(grads, tx.init(START), START)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "state", state)
    checkpointer.wait_until_finished()
    restored = checkpointer.restore(tmp_path / "state",
                                    target=jax.tree.map(ocp.utils.to_shape_dtype_struct, state))
    chex.assert_trees_all_equal(restored, state)
    chex.assert_trees_all_equal(update(grads, restored, START), update(grads, state, START))
