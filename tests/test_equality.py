"""Optimizers compare equal by value: same constructor, equal arguments.

Equal optimizers hash equally, so as a static ``jit`` argument they compile once; different
arguments are unequal. Arguments are compared by value where that is well defined (numbers,
concrete arrays by dtype, shape and contents, trees such as masks, nested transformations,
schedules built by ``gradchain.schedules``) and by identity elsewhere (a user's function, a traced
value). A transformation still unpacks as ``(init, update)`` and works inside Optax and Flax.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.training import train_state

import gradchain as gc
from registry import ALIAS_CALLS

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 3), "b": jnp.asarray(0.5)}
S = gc.schedules


def _equal(a, b):
    return a == b and not a != b and hash(a) == hash(b)


def _unequal(a, b):
    return a != b and not a == b


@pytest.mark.parametrize("label, alias, kwargs", ALIAS_CALLS, ids=[r[0] for r in ALIAS_CALLS])
def test_every_alias_built_twice_is_equal(label, alias, kwargs):
    assert _equal(getattr(gc, alias)(**kwargs), getattr(gc, alias)(**kwargs))


@pytest.mark.parametrize("a, b", [
    (lambda: gc.adam(1e-3), lambda: gc.adam(2e-3)),
    (lambda: gc.adam(1e-3), lambda: gc.adamw(1e-3)),
    (lambda: gc.adam(1e-3), lambda: gc.adam(1e-3, nesterov=True)),
    (lambda: gc.adam(1e-3), lambda: gc.adam(1e-3, mu_dtype=jnp.bfloat16)),
    (lambda: gc.sgd(1), lambda: gc.sgd(1.0)),
    (lambda: gc.sgd(jnp.asarray(0.1)), lambda: gc.sgd(jnp.asarray(0.2))),
    (lambda: gc.sgd(jnp.asarray(0.1, jnp.float32)), lambda: gc.sgd(jnp.asarray(0.1, jnp.float64))),
    (lambda: gc.sgd(S.cosine_decay_schedule(0.1, 100)),
     lambda: gc.sgd(S.cosine_decay_schedule(0.1, 200))),
    (lambda: gc.adamw(1e-3, mask={"w": True, "b": False}),
     lambda: gc.adamw(1e-3, mask={"w": False, "b": False})),
    (lambda: gc.lookahead(gc.adam(1e-3)), lambda: gc.lookahead(gc.adam(2e-3))),
    (lambda: gc.chain(gc.clip(1.0), gc.sgd(0.1)), lambda: gc.chain(gc.sgd(0.1), gc.clip(1.0))),
    (lambda: gc.sgd(lambda count: 0.1), lambda: gc.sgd(lambda count: 0.1)),
    (lambda: gc.chain(optax.adam(1e-3)), lambda: gc.chain(optax.adam(1e-3))),
], ids=["lr", "alias", "option", "dtype", "int-vs-float", "array-values", "array-dtype",
        "schedule-args", "mask-tree", "nested", "order", "user-functions",
        "optax-inside"])
def test_different_arguments_are_unequal(a, b):
    assert _unequal(a(), b())


@pytest.mark.parametrize("make", [
    lambda: gc.sgd(np.float32(0.1), momentum=np.asarray(0.9)),
    lambda: gc.sgd(jnp.asarray(0.1)),
    lambda: gc.sgd(S.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100)),
    lambda: gc.adam(S.join_schedules([S.constant_schedule(0.1), S.linear_schedule(0.1, 0.0, 50)],
                                     [10])),
    lambda: gc.adamw(1e-3, mask={"w": True, "b": False}),
    lambda: gc.lookahead(gc.adam(1e-3), sync_period=3),
    lambda: gc.chain(gc.clip_by_global_norm(1.0), gc.adam(1e-3)),
    lambda: gc.param_groups({"slow": gc.sgd(0.01), "fast": gc.adam(1e-3)}, _labels),
    lambda: gc.accumulate_gradients(gc.adam(1e-3), 2),
], ids=["numpy-arrays", "jax-array", "schedule", "joined-schedules", "mask-tree", "nested",
        "chain", "param-groups", "accumulate"])
def test_equal_arguments_are_equal(make):
    assert _equal(make(), make())


def _labels(path, leaf):
    return "slow" if path[-1] == "b" else "fast"


def test_schedules_built_by_gradchain_compare_by_value():
    assert _equal(S.cosine_decay_schedule(0.1, 100), S.cosine_decay_schedule(0.1, 100))
    assert _unequal(S.cosine_decay_schedule(0.1, 100), S.cosine_decay_schedule(0.1, 100, 0.1))
    assert _unequal(S.step_lr(0.1, 10), S.exponential_lr(0.1, 0.9))
    schedule = S.cyclic_lr(0.1, 1.0, step_size_up=4)
    assert float(schedule(2)) == pytest.approx(0.55)
    assert schedule.__name__ == "cyclic_lr"


def test_a_user_function_compares_by_identity():
    mask = lambda params: jax.tree.map(lambda p: p.ndim > 0, params)  # noqa: E731
    assert _equal(gc.adamw(1e-3, mask=mask), gc.adamw(1e-3, mask=mask))
    assert _unequal(gc.adamw(1e-3, mask=mask), gc.adamw(1e-3, mask=lambda p: mask(p)))


def test_traced_values_compare_by_identity():
    @jax.jit
    def compare(lr, other):
        same = gc.adam(lr) == gc.adam(lr)
        different = gc.adam(lr) == gc.adam(other)
        return jnp.asarray([same, different])

    assert compare(1e-3, 1e-3).tolist() == [True, False]


def test_a_transformation_built_from_functions_compares_by_its_functions():
    tx = gc.adam(1e-3)
    plain = gc.GradientTransformation(tx.init, tx.update)
    assert _equal(plain, gc.GradientTransformation(tx.init, tx.update))
    assert _unequal(plain, gc.GradientTransformation(tx.init, gc.sgd(0.1).update))
    assert _unequal(plain, tx)


def test_building_around_a_transformation_leaves_it_as_it_was():
    tx = gc.adam(1e-3)
    before = tx.call
    gc.chain(tx)
    gc.lookahead(tx)
    assert tx.call is before and _equal(tx, gc.adam(1e-3))


def test_equal_optimizers_compile_once_as_a_static_jit_argument():
    traces = []

    def train_step(params, state, grads, tx):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return gc.apply_updates(params, updates), state

    step = jax.jit(train_step, static_argnames="tx")
    grads = jax.tree.map(jnp.ones_like, PARAMS)
    results = []
    for _ in range(3):
        tx = gc.adam(1e-3)
        params, _ = step(PARAMS, tx.init(PARAMS), grads, tx=tx)
        results.append(params)
    assert len(traces) == 1
    params, _ = step(PARAMS, gc.adam(2e-3).init(PARAMS), grads, tx=gc.adam(2e-3))
    assert len(traces) == 2
    np.testing.assert_allclose(results[0]["w"], PARAMS["w"] - 1e-3, rtol=1e-6)
    np.testing.assert_allclose(params["w"], PARAMS["w"] - 2e-3, rtol=1e-6)


def test_still_an_init_update_pair_for_optax_and_flax():
    tx = gc.adam(1e-3)
    init, update = tx
    assert (init, update) == tuple(tx) and len(tx) == 2
    grads = jax.tree.map(jnp.ones_like, PARAMS)
    mixed = optax.chain(optax.clip(1.0), tx)
    updates, _ = mixed.update(grads, mixed.init(PARAMS), PARAMS)
    np.testing.assert_allclose(updates["w"], -1e-3 * np.ones(3), rtol=1e-6)
    state = train_state.TrainState.create(apply_fn=None, params=PARAMS, tx=tx)
    state = state.apply_gradients(grads=grads)
    np.testing.assert_allclose(state.params["w"], PARAMS["w"] - 1e-3, rtol=1e-6)
    same = train_state.TrainState.create(apply_fn=None, params=PARAMS, tx=gc.adam(1e-3))
    assert jax.tree.structure(state) == jax.tree.structure(same)
