"""Non-finite steps: NaN/Inf gradients injected at chosen steps leave the run where a run that
never saw those steps ends (bit for bit); consecutive and total counters; giving up after ``n``
in a row with a counter that restarts; Optax's ``apply_if_finite`` numbers where it agrees."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
from gradchain.introspection.find import find_state
from gradchain.wrappers.finite import apply_if_finite, skip_non_finite
from problems import initial_params, loss

STEPS = 12
BAD = {2: jnp.nan, 5: jnp.inf, 6: jnp.nan}  # step -> value injected into one gradient entry


def injected(step, grads):
    """The gradients of ``step`` with ``BAD[step]`` written into one entry (if any)."""
    flags = jnp.asarray([t in BAD for t in range(STEPS)])
    values = jnp.asarray([BAD.get(t, 0.0) for t in range(STEPS)])
    return {**grads, "w": jnp.where(flags[step], grads["w"].at[1].set(values[step]), grads["w"])}


@jax.jit
def injected_and_clean_runs(params):
    """The protected Adam on gradients with ``BAD`` injected, the same on clean gradients with
    those steps left out, and plain Adam on the latter."""
    tx = skip_non_finite(gc.adam(0.05))

    def run(tx, steps, inject):
        def step(carry, t):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = tx.update(injected(t, g) if inject else g, s, p)
            return (gc.apply_updates(p, u), s), (
                (s.notfinite_count, s.total_notfinite, s.last_finite) if inject else None)
        return jax.lax.scan(step, (params, tx.init(params)), jnp.arange(steps))

    clean_steps = STEPS - len(BAD)
    return (run(tx, STEPS, True), run(tx, clean_steps, False),
            run(gc.adam(0.05), clean_steps, False))


def test_skipped_steps_leave_no_trace():
    params = initial_params(jnp.float64)
    ((ours, state), (streak, total, finite)), ((clean, clean_state), _), ((bare, bare_state), _) = \
        injected_and_clean_runs(params)
    chex.assert_trees_all_equal(ours, clean)
    chex.assert_trees_all_equal(state.inner_state, clean_state.inner_state)
    # Unwrapped Adam: the same run up to XLA's fusion choices inside lax.cond (a few ulp).
    chex.assert_trees_all_close(ours, bare, rtol=1e-14, atol=1e-15)
    chex.assert_trees_all_close(state.inner_state, bare_state, rtol=1e-14, atol=1e-15)
    assert not np.allclose(ours["w"], params["w"])
    np.testing.assert_array_equal(streak, [0, 0, 1, 0, 0, 1, 2, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(total, [0, 0, 1, 1, 1, 2, 3, 3, 3, 3, 3, 3])
    np.testing.assert_array_equal(finite, [t not in BAD for t in range(STEPS)])
    assert int(find_state(state, "total_notfinite")) == len(BAD)


def run_on_nan(tx, calls):
    """``calls`` updates on all-NaN gradients: which were applied, and the counters."""
    params = jnp.zeros(2, jnp.float32)
    state, applied, streaks = tx.init(params), [], []
    update = jax.jit(tx.update)
    for _ in range(calls):
        updates, state = update(jnp.full(2, jnp.nan, jnp.float32), state, params)
        applied.append(bool(jnp.isnan(updates).all()))
        streaks.append(int(state.notfinite_count))
    return applied, streaks, int(state.total_notfinite)


def test_gives_up_after_n_in_a_row_and_the_counter_restarts():
    applied, streaks, total = run_on_nan(skip_non_finite(gc.sgd(0.1), give_up_after=2), 7)
    assert applied == [False, False, True, False, False, True, False]
    assert streaks == [1, 2, 0, 1, 2, 0, 1]
    assert total == 7
    # Optax's counter keeps growing after giving up, so every later NaN gets through.
    applied, streaks, _ = run_on_nan(optax.apply_if_finite(optax.sgd(0.1), 2), 5)
    assert applied == [False, False, True, True, True] and streaks == [1, 2, 3, 4, 5]
    applied, streaks, _ = run_on_nan(apply_if_finite(gc.sgd(0.1), 2), 5)
    assert applied == [False, False, True, False, False] and streaks == [1, 2, 0, 1, 2]


def test_never_gives_up_by_default():
    applied, streaks, total = run_on_nan(skip_non_finite(gc.sgd(0.1)), 4)
    assert applied == [False] * 4 and streaks == [1, 2, 3, 4] and total == 4


def test_apply_if_finite_matches_optax_while_it_does_not_give_up():
    params = {"a": jnp.linspace(-1.0, 1.0, 4, dtype=jnp.float32), "b": jnp.ones(2, jnp.float32)}
    grads = jax.tree.map(lambda p: jnp.asarray(np.random.default_rng(0).normal(
        size=(8,) + p.shape), jnp.float32), params)
    grads["a"] = grads["a"].at[3, 0].set(jnp.inf).at[4, 2].set(jnp.nan)

    def run(tx):
        def step(carry, g):
            p, s = carry
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), (s.notfinite_count, s.total_notfinite,
                                                    s.last_finite)
        (p, _), counters = jax.lax.scan(step, (params, tx.init(params)), grads)
        return p, counters

    ours, theirs = jax.jit(lambda: (run(apply_if_finite(gc.adam(0.1), 3)),
                                    run(optax.apply_if_finite(optax.adam(0.1), 3))))()
    chex.assert_trees_all_close(ours, theirs, rtol=1e-6, atol=0)


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError, match=r"skip_non_finite: give_up_after=-1 is out of range"):
        skip_non_finite(gc.sgd(0.1), give_up_after=-1)
    with pytest.raises(ValueError, match=r"apply_if_finite: max_consecutive_errors=-2 is out of "
                                         r"range"):
        apply_if_finite(gc.sgd(0.1), -2)
    with pytest.raises(TypeError, match=r"give_up_after must be an integer or None"):
        skip_non_finite(gc.sgd(0.1), give_up_after=lambda step: 3)


def test_vmap_over_a_batch_with_and_without_nans():
    tx = skip_non_finite(gc.sgd(0.5))
    params = jnp.ones((2, 3))
    grads = jnp.array([[1.0, 1.0, 1.0], [1.0, jnp.nan, 1.0]])
    updates, state = jax.vmap(tx.update)(grads, jax.vmap(tx.init)(params), params)
    chex.assert_trees_all_equal(updates, jnp.array([[-0.5, -0.5, -0.5], [0.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(state.notfinite_count, [0, 1])
