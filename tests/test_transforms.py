"""Registry rows under JAX's transformations: eager and jit, vmap, grad; saturating step
counts; keyword extras through the combinators.

``jit`` over whole trajectories is exercised by the parity tests (one ``lax.scan`` per run);
here a few eager steps are compared with a jitted ``update``. In the ``vmap`` and ``grad`` tests
the optimizer runs op by op (only the problem's gradient is compiled, once for all rows):
compiling a differentiated 5-step scan costs about a second of XLA time per row, more than the
eager run. These costly tests run on ``FAMILIES`` (one row per set of primitives); the cheap
ones on every row.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
from problems import initial_params, loss
from registry import CONFIGS, FAMILIES, ids

STEPS = 5
INITIAL = initial_params(jnp.float64)
INT32_MAX = np.iinfo(np.int32).max
# The problem's loss and gradient, compiled once for every row (also under vmap and grad).
problem_loss = jax.jit(loss)
problem_grad = jax.jit(jax.grad(loss))


def run(config, learning_rate=None, params=INITIAL, steps=STEPS, update=None):
    """``steps`` closed-loop steps of ``config``; returns ``(final loss, final params, state)``.

    ``learning_rate=None`` runs the row's own rate (its schedule for scheduled rows);
    ``update`` replaces ``tx.update`` (e.g. by its jitted version). The optimizer itself runs
    op by op unless ``update`` is jitted.
    """
    tx = config.gradchain(learning_rate)
    update = update or tx.update
    state = tx.init(params)
    for _ in range(steps):
        u, state = update(problem_grad(params), state, params)
        params = gc.apply_updates(params, u)
    return problem_loss(params), params, state


@pytest.mark.parametrize("config", FAMILIES, ids=ids(FAMILIES))
def test_eager_steps_equal_jit(config):
    """Eager and jitted updates agree to rounding (float64, rtol 1e-13)."""
    compiled = run(config, steps=3, update=jax.jit(config.gradchain().update))
    with jax.disable_jit():
        eager = run(config, steps=3)
    chex.assert_trees_all_close(eager, compiled, rtol=1e-13, atol=0)


def _take(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


@pytest.mark.parametrize("config", FAMILIES, ids=ids(FAMILIES))
def test_vmap_over_learning_rates_equals_separate_runs(config):
    rates = config.learning_rate * jnp.array([0.25, 1.0, 2.0])
    batched = jax.vmap(lambda rate: run(config, rate, steps=3))(rates)
    for i, rate in enumerate(rates):
        chex.assert_trees_all_close(_take(batched, i), run(config, rate, steps=3),
                                    rtol=1e-13, atol=0)
    assert not np.allclose(batched[1]["w"][0], batched[1]["w"][2])


@pytest.mark.parametrize("config", FAMILIES, ids=ids(FAMILIES))
def test_vmap_over_params_and_states_equals_separate_runs(config):
    """A batch of independent optimizers: params and states batched, ``tx.init`` under vmap."""
    starts = [jax.tree.map(lambda x, f=f: f * x, INITIAL) for f in (1.0, -0.5, 2.0)]
    batched = jax.vmap(lambda p: run(config, params=p, steps=3))(
        jax.tree.map(lambda *xs: jnp.stack(xs), *starts))
    for i, start in enumerate(starts):
        chex.assert_trees_all_close(_take(batched, i), run(config, params=start, steps=3),
                                    rtol=1e-13, atol=0)


@pytest.mark.parametrize("config", FAMILIES, ids=ids(FAMILIES))
def test_grad_wrt_learning_rate_matches_central_difference(config):
    """d loss(θ_5) / dγ by ``jax.grad`` through 5 updates (γ traced into the alias) vs a
    central difference in float64.

    Step ``h = 1e-4 γ``: truncation (~h²) and rounding (~1e-16/h) errors are far below the
    tolerance ``rtol = 1e-6`` (measured agreement: 3e-8 or better).
    """
    rate = jnp.asarray(config.learning_rate)
    derivative = jax.grad(lambda r: run(config, r)[0])(rate)
    h = 1e-4 * rate
    difference = (run(config, rate + h)[0] - run(config, rate - h)[0]) / (2 * h)
    assert abs(float(difference)) > 1e-2
    np.testing.assert_allclose(derivative, difference, rtol=1e-6)


def _set_counts(state, value):
    """Every step count in ``state`` (its integer leaves) set to ``value``."""
    return jax.tree.map(lambda x: jnp.full_like(x, value)
                        if jnp.issubdtype(x.dtype, jnp.integer) else x, state)


def _two_steps(tx, state):
    params, updates = INITIAL, []
    for _ in range(2):
        u, state = tx.update(problem_grad(params), state, params)
        params = gc.apply_updates(params, u)
        updates.append(u)
    return updates, state


@pytest.mark.parametrize("config", CONFIGS, ids=ids(CONFIGS))
def test_step_count_saturates_instead_of_wrapping(config):
    """Two steps from count ``2**31 - 2`` end at ``2**31 - 1`` with the updates of count ``10**6``.

    At both counts every ``β^t`` has underflowed and schedules have ended, so the updates must be
    identical; a count that wrapped to ``-2**31`` would give ``β^t = inf`` (or restart a
    schedule).
    """
    tx = config.gradchain()
    state = tx.init(INITIAL)
    if not any(jnp.issubdtype(x.dtype, jnp.integer) for x in jax.tree.leaves(state)):
        pytest.skip("this configuration keeps no step count, so nothing can wrap")
    near_max, state_near_max = _two_steps(tx, _set_counts(state, INT32_MAX - 1))
    far, _ = _two_steps(tx, _set_counts(state, 10**6))
    for count in jax.tree.leaves(state_near_max):
        if jnp.issubdtype(count.dtype, jnp.integer):
            assert count == INT32_MAX
    chex.assert_trees_all_equal(near_max, far)
    chex.assert_tree_all_finite(near_max)


def scale_by_value():
    """``u -> value · u`` with ``value`` a required keyword extra (as ``value=loss``)."""

    def init(params):
        del params
        return gc.EmptyState()

    def update(updates, state, params=None, *, value, **extra):
        del params, extra
        return jax.tree.map(lambda u: value * u, updates), state

    return gc.GradientTransformation(init, update, name="scale_by_value")


def test_extras_reach_the_parts_that_accept_them_through_chain_and_branch():
    grads = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([0.5])}
    tx = gc.chain(
        optax.scale(2.0),                       # plain Optax: takes no extras
        gc.branch(scale_by_value(), gc.chain(gc.identity(), optax.identity()),
                  combine=lambda a, b: a + b),  # value · u + u
        gc.chain(scale_by_value()),
        optax.sgd(1.0))                          # Optax with extra-args support: ignores value
    state = tx.init(grads)
    updates, _ = jax.jit(tx.update)(grads, state, grads, value=3.0)
    # -1 · 3 · (3 · 2g + 2g) = -24 g
    chex.assert_trees_all_close(updates, jax.tree.map(lambda g: -24.0 * g, grads), rtol=1e-15)
    with pytest.raises(TypeError, match="value"):
        tx.update(grads, state, grads)


@pytest.mark.parametrize("config", CONFIGS, ids=ids(CONFIGS))
def test_alias_accepts_and_ignores_extras(config):
    tx = config.gradchain()
    state = tx.init(INITIAL)
    grads = problem_grad(INITIAL)
    with_extras = tx.update(grads, state, INITIAL, value=problem_loss(INITIAL), other="ignored")
    chex.assert_trees_all_equal(with_extras, tx.update(grads, state, INITIAL))
