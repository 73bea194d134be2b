"""Registry rows under JAX's transformations: eager and jit, vmap, grad; saturating step
counts; keyword extras through the combinators.

A run is one ``lax.scan`` over the steps, compiled once per row and transformation by the
module-level ``train``, ``train_batch`` and ``train_value_and_grad`` (XLA compilation, not the
arithmetic, is the cost here: about 2 s of CPU per row for these three and the eager run). They,
the saturation test and the keyword-extras test run on ``FAMILIES`` (one row per mechanism, see
``registry.py``).
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
from problems import gradient, initial_params, loss
from registry import FAMILIES, ids

STEPS = 5
INT32_MAX = np.iinfo(np.int32).max


def initial(config):
    """The row's float64 (complex128 for complex rows) starting point."""
    return initial_params(config.dtype("float64"))


def _train(config, learning_rate, params, steps=STEPS):
    """``steps`` closed-loop updates of ``config`` from ``params`` (``learning_rate=None``: the
    row's own rate); returns ``(final loss, (final params, final state))``."""
    tx = config.gradchain(learning_rate)

    def step(carry, _):
        p, s = carry
        u, s = tx.update(gradient(p), s, p)
        return (gc.apply_updates(p, u), s), None

    (params, state), _ = jax.lax.scan(step, (params, tx.init(params)), length=steps)
    return loss(params), (params, state)


train = jax.jit(_train, static_argnums=(0, 3))
train_value_and_grad = jax.jit(jax.value_and_grad(_train, argnums=1, has_aux=True),
                               static_argnums=(0, 3))


@functools.partial(jax.jit, static_argnums=(0, 3))
def train_batch(config, learning_rates, params, steps):
    return jax.vmap(lambda r, p: _train(config, r, p, steps))(learning_rates, params)


def rate_argument(config):
    """The row's rate as an array for constant rows (one compiled run serves every value),
    None (its schedule) for scheduled rows."""
    return None if config.schedule else jnp.asarray(config.learning_rate)


@pytest.mark.parametrize("config", FAMILIES, ids=ids(FAMILIES))
def test_eager_steps_equal_jit(config):
    """Op-by-op updates agree with the compiled ones to rounding (float64, rtol 1e-13)."""
    compiled = train(config, rate_argument(config), initial(config), 3)
    with jax.disable_jit():
        eager = _train(config, rate_argument(config), initial(config), 3)
    chex.assert_trees_all_close(eager, compiled, rtol=1e-13, atol=0)


@pytest.mark.parametrize("config", FAMILIES, ids=ids(FAMILIES))
def test_vmap_over_independent_optimizers_equals_separate_runs(config):
    """A batch of three optimizers under ``vmap``: the first two differ only in the learning
    rate (a batched hyperparameter), the first and third only in the params (batched params
    and states, ``tx.init`` under vmap). Each equals its separate run (rtol 1e-13)."""
    rates = config.learning_rate * jnp.array([1.0, 2.0, 1.0])
    starts = [initial(config), initial(config), jax.tree.map(lambda x: -0.5 * x, initial(config))]
    batched = train_batch(config, rates, jax.tree.map(lambda *xs: jnp.stack(xs), *starts), 3)
    for i, (rate, start) in enumerate(zip(rates, starts)):
        alone = train(config, rate, start, 3)
        chex.assert_trees_all_close(jax.tree.map(lambda x, i=i: x[i], batched), alone,
                                    rtol=1e-13, atol=0)
    params = batched[1][0]["w"]
    assert not np.allclose(params[0], params[1]) and not np.allclose(params[0], params[2])


@pytest.mark.parametrize("config", FAMILIES, ids=ids(FAMILIES))
def test_grad_wrt_learning_rate_matches_central_difference(config):
    """d loss(θ_5) / dγ by ``jax.grad`` through 5 updates (γ traced into the alias) vs a
    central difference in float64.

    Step ``h = 1e-4 γ``: truncation (~h²) and rounding (~1e-16/h) errors are far below the
    tolerance ``rtol = 1e-6`` (measured agreement: 3e-8 or better).
    """
    rate = jnp.asarray(config.learning_rate)
    h = 1e-4 * rate
    (_, _), derivative = train_value_and_grad(config, rate, initial(config), STEPS)
    (up, _), _ = train_value_and_grad(config, rate + h, initial(config), STEPS)
    (down, _), _ = train_value_and_grad(config, rate - h, initial(config), STEPS)
    difference = (up - down) / (2 * h)
    assert abs(float(difference)) > 1e-2
    np.testing.assert_allclose(derivative, difference, rtol=1e-6)


def _set_counts(state, value):
    """Every step count in ``state`` (its integer leaves) set to ``value``."""
    return jax.tree.map(lambda x: jnp.full_like(x, value)
                        if jnp.issubdtype(x.dtype, jnp.integer) else x, state)


def _two_steps(tx, state, params):
    """Two eager closed-loop updates from ``params``; returns the params after each."""
    trail = []
    for _ in range(2):
        updates, state = tx.update(gradient(params), state, params)
        params = gc.apply_updates(params, updates)
        trail.append(params)
    return trail, state


def _keeps_a_count(config):
    state = config.gradchain().init(initial(config))
    return any(jnp.issubdtype(x.dtype, jnp.integer) for x in jax.tree.leaves(state))


# Rows whose state keeps no step count (plain sgd: no schedule, no step-dependent rule) have
# nothing that could wrap, so they are not parametrised here.
COUNTED = [config for config in FAMILIES if _keeps_a_count(config)]


@pytest.mark.parametrize("config", COUNTED, ids=ids(COUNTED))
def test_step_count_saturates_instead_of_wrapping(config):
    """Two steps from count ``2**31 - 2`` end at ``2**31 - 1`` with the params of count ``10**6``.

    At both counts every ``β^t`` has underflowed and schedules have ended, so the steps must be
    identical; a count that wrapped to ``-2**31`` would give ``β^t = inf`` (or restart a
    schedule).
    """
    tx, start = config.gradchain(), initial(config)
    state = tx.init(start)
    with jax.disable_jit():  # op by op: two steps do not pay for a compilation
        near_max, state_near_max = _two_steps(tx, _set_counts(state, INT32_MAX - 1), start)
        far, _ = _two_steps(tx, _set_counts(state, 10**6), start)
    for count in jax.tree.leaves(state_near_max):
        if jnp.issubdtype(count.dtype, jnp.integer):
            assert count == INT32_MAX
    if not config.step_dependent:
        chex.assert_trees_all_equal(near_max, far)
    chex.assert_tree_all_finite(near_max)
    assert not np.array_equal(near_max[1]["w"], start["w"])


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


@pytest.mark.parametrize("config", FAMILIES, ids=ids(FAMILIES))
def test_alias_accepts_and_ignores_extras(config):
    tx, start = config.gradchain(), initial(config)
    state = tx.init(start)
    grads = gradient(start)
    with jax.disable_jit():
        with_extras = tx.update(grads, state, start, value=loss(start), other="ignored")
        without = tx.update(grads, state, start)
    chex.assert_trees_all_equal(with_extras, without)
