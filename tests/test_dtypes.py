"""Dtypes: low-precision params and gradients, state dtype options, and hyperparameters that are
never rounded to the params' dtype."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc
from problems import initial_params
from registry import CONSTANT_FAMILIES, ids

LOW = [jnp.bfloat16, jnp.float16]
STEPS = 3
STAT_STATES = (gc.EmaState, gc.MaxVState, gc.MomentumState, gc.AccumulateState, gc.DeltaRmsState)
STAT_FIELDS = {gc.EmaState: "ema", gc.MaxVState: "max", gc.MomentumState: "buffer",
               gc.AccumulateState: "total", gc.DeltaRmsState: "delta_sq"}
# Magnitudes >= 0.3 keep (1 - b2)·g² a normal float16 number; the subnormal and underflowing
# cases are test_float16_gradients_whose_squares_underflow's.
GRADS = {"w": jnp.array([0.3, -0.82, 1.36, -0.81, 0.53, 1.66], jnp.float32),
         "b": jnp.array([1.71, -3.02, 2.91], jnp.float32)}


def _stat_states(state):
    """Every statistic-keeping sub-state of ``state`` (NamedTuples of the moment primitives)."""
    return [s for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, STAT_STATES))
            if isinstance(s, STAT_STATES)]


def _stat_dtypes(sub_state):
    statistic = getattr(sub_state, STAT_FIELDS[type(sub_state)])
    return {leaf.dtype for leaf in jax.tree.leaves(statistic)}


def _run(tx, params, grads, steps=STEPS):
    """``steps`` updates on the same gradients; returns each step's updates and the last state."""
    state, out = tx.init(params), []
    for _ in range(steps):
        updates, state = tx.update(grads, state, params)
        out.append(updates)
    return out, state


@pytest.mark.parametrize("config", CONSTANT_FAMILIES, ids=ids(CONSTANT_FAMILIES))
@pytest.mark.parametrize("dtype", LOW, ids=["bfloat16", "float16"])
def test_low_precision_params_keep_their_dtype(config, dtype):
    """Params and gradients in bfloat16/float16: updates, new params and statistics stay in that
    dtype, and the updates are the float32 run's to a few units of the dtype's precision."""
    params = initial_params(dtype)
    grads = jax.tree.map(lambda g: g.astype(dtype), GRADS)
    tx = config.gradchain()
    low, state = _run(tx, params, grads)
    reference, _ = _run(tx, initial_params(jnp.float32),
                        jax.tree.map(lambda g: g.astype(jnp.float32), grads))
    for updates, expected in zip(low, reference):
        for key in params:
            assert updates[key].dtype == dtype
            assert gc.apply_updates(params, updates)[key].dtype == dtype
            u, e = (np.asarray(x[key], np.float64) for x in (updates, expected))
            assert np.all(np.isfinite(u))
            np.testing.assert_allclose(u, e, rtol=0, atol=8 * float(jnp.finfo(dtype).eps)
                                       * np.max(np.abs(e)))
    for sub in _stat_states(state):
        assert _stat_dtypes(sub) == {jnp.dtype(dtype)}


ADAM_FAMILY = [gc.adam, gc.adamw, gc.amsgrad]
MOMENT_DTYPES = [(None, None), (jnp.float32, jnp.float32), (jnp.bfloat16, jnp.float32),
                 (jnp.float32, None)]


@pytest.mark.parametrize("alias", ADAM_FAMILY, ids=lambda a: a.__name__)
@pytest.mark.parametrize("mu_dtype, nu_dtype", MOMENT_DTYPES,
                         ids=[f"mu={m and jnp.dtype(m)}-nu={n and jnp.dtype(n)}"
                              for m, n in MOMENT_DTYPES])
def test_adam_family_moment_dtypes(alias, mu_dtype, nu_dtype):
    """``mu_dtype`` sets the first moment's dtype, ``nu_dtype`` the second's (and AMSGrad's
    running maximum); None means the params' dtype. Updates stay in the params' dtype."""
    params = initial_params(jnp.bfloat16)
    grads = jax.tree.map(lambda g: g.astype(jnp.bfloat16), GRADS)
    tx = alias(1e-3, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    expect_mu = jnp.dtype(mu_dtype or jnp.bfloat16)
    expect_nu = jnp.dtype(nu_dtype or jnp.bfloat16)
    for state in (tx.init(params), _run(tx, params, grads)[1]):
        seen = {"b1": 0, "b2": 0, "max": 0}
        for sub in _stat_states(state):
            if isinstance(sub, gc.MaxVState):
                seen["max"] += 1
                assert _stat_dtypes(sub) == {expect_nu}
            elif "b1" in sub.hyperparams:
                seen["b1"] += 1
                assert _stat_dtypes(sub) == {expect_mu}
            else:
                seen["b2"] += 1
                assert _stat_dtypes(sub) == {expect_nu}
        assert seen == {"b1": 1, "b2": 1, "max": int(alias is gc.amsgrad)}
    updates = _run(tx, params, grads, steps=1)[0][0]
    assert {u.dtype for u in jax.tree.leaves(updates)} == {jnp.dtype(jnp.bfloat16)}


ACCUMULATORS = [
    (lambda dt: gc.sgd(0.1, momentum=0.9, accumulator_dtype=dt), {gc.MomentumState: 1}),
    (lambda dt: gc.adagrad(0.1, accumulator_dtype=dt), {gc.AccumulateState: 1}),
    (lambda dt: gc.rmsprop(0.1, accumulator_dtype=dt), {gc.EmaState: 1}),
    (lambda dt: gc.rmsprop(0.1, centered=True, momentum=0.9, accumulator_dtype=dt),
     {gc.EmaState: 2, gc.MomentumState: 1}),
    (lambda dt: gc.adadelta(accumulator_dtype=dt), {gc.EmaState: 1, gc.DeltaRmsState: 1}),
]


@pytest.mark.parametrize("build, expected_states", ACCUMULATORS,
                         ids=["sgd", "adagrad", "rmsprop", "rmsprop-centered", "adadelta"])
@pytest.mark.parametrize("accumulator_dtype", [None, jnp.float32], ids=["default", "float32"])
def test_accumulator_dtype(build, expected_states, accumulator_dtype):
    """``accumulator_dtype`` sets the dtype of every statistic (None: the params')."""
    params = initial_params(jnp.bfloat16)
    grads = jax.tree.map(lambda g: g.astype(jnp.bfloat16), GRADS)
    tx = build(accumulator_dtype)
    expected = jnp.dtype(accumulator_dtype or jnp.bfloat16)
    updates, state = _run(tx, params, grads)
    counted = {}
    for sub in _stat_states(state):
        counted[type(sub)] = counted.get(type(sub), 0) + 1
        assert _stat_dtypes(sub) == {expected}
    assert counted == expected_states
    assert {u.dtype for u in jax.tree.leaves(updates)} == {jnp.dtype(jnp.bfloat16)}


def _stored(state, key):
    """Every value stored under ``key`` in the ``hyperparams`` dicts of ``state``."""
    found = []

    def visit(node):
        if isinstance(node, dict) and key in node:
            found.append(node[key])
        children = node.values() if isinstance(node, dict) else (
            node if isinstance(node, (tuple, list)) else ())
        for child in children:
            visit(child)

    visit(state)
    return found


@pytest.mark.parametrize("nu_dtype", [None, jnp.float32], ids=["nu=bfloat16", "nu=float32"])
def test_b2_is_not_rounded_to_bfloat16(nu_dtype):
    """In bfloat16, 0.999 is 1.0: then ``1 - b2 = 0``, ``v`` stays 0 and the step is 0/0. The
    stored ``b2`` keeps JAX's default float dtype, and with a constant gradient the bias-corrected
    second moment is ``g²`` and Adam's step is ``-lr·sign(g)`` at every step."""
    assert float(jnp.asarray(0.999, jnp.bfloat16)) == 1.0
    lr, b2 = 1e-2, 0.999
    params = {"w": jnp.linspace(-1.0, 1.0, 4, dtype=jnp.bfloat16)}
    grads = {"w": jnp.array([0.75, -0.003, 2.5, -40.0], jnp.bfloat16)}
    tx = gc.adam(lr, b2=b2, nu_dtype=nu_dtype)
    state = tx.init(params)
    stored = _stored(state, "b2")
    assert stored and all(v.dtype == jnp.result_type(float) and v == np.asarray(b2, v.dtype)
                          for v in stored)
    g = np.asarray(grads["w"], np.float64)
    for t in range(1, 6):
        updates, state = tx.update(grads, state, params)
        assert updates["w"].dtype == jnp.bfloat16
        np.testing.assert_allclose(np.asarray(updates["w"], np.float64), -lr * np.sign(g),
                                   rtol=2 ** -7)
        (nu,) = [s.ema["w"] for s in _stat_states(state) if "b2" in s.hyperparams]
        v_hat = np.asarray(nu, np.float64) / (1 - b2 ** t)
        precision = float(jnp.finfo(nu.dtype).eps)
        np.testing.assert_allclose(v_hat, g ** 2, rtol=4 * t * precision)


def test_float32_second_moment_with_bfloat16_params_equals_float32_run():
    """With ``mu_dtype = nu_dtype = float32`` the moments of a bfloat16-params run are exactly the
    float32 run's (same hyperparameters, same arithmetic); only the step is rounded to bfloat16."""
    params16 = initial_params(jnp.bfloat16)
    grads16 = jax.tree.map(lambda g: g.astype(jnp.bfloat16), GRADS)
    grads32 = jax.tree.map(lambda g: g.astype(jnp.float32), grads16)
    tx16 = gc.adam(1e-2, mu_dtype=jnp.float32, nu_dtype=jnp.float32)
    tx32 = gc.adam(1e-2)
    s16, s32 = tx16.init(params16), tx32.init(initial_params(jnp.float32))
    for _ in range(5):
        u16, s16 = tx16.update(grads16, s16, params16)
        u32, s32 = tx32.update(grads32, s32)
        stats16, stats32 = _stat_states(s16), _stat_states(s32)
        assert len(stats16) == len(stats32) == 2
        for a, b in zip(stats16, stats32):
            chex.assert_trees_all_equal(a.ema, b.ema)
        for key in u16:
            np.testing.assert_allclose(np.asarray(u16[key], np.float64),
                                       np.asarray(u32[key], np.float64), rtol=2 ** -8)


@pytest.mark.parametrize("alias", ADAM_FAMILY, ids=lambda a: a.__name__)
@pytest.mark.parametrize("mu_dtype, rtol", [(None, 1e-2), (jnp.float32, 2e-3)],
                         ids=["mu=float16", "mu=float32"])
def test_float16_gradients_whose_squares_underflow(alias, mu_dtype, rtol):
    """``(1e-4)² = 1e-8`` is below float16's smallest subnormal (6e-8): with ``nu_dtype=float32``
    the square is taken in float32, ``v`` is ``(1 - b2^t)·g²`` and the step is ``-lr·sign(g)``.
    (With a float16 first moment ``(1 - b1)·g = 1e-5`` is subnormal: 0.3% rounding.)"""
    lr = 1e-3
    params = {"w": jnp.ones(3, jnp.float16)}
    grads = {"w": jnp.array([1e-4, -3e-4, 1.5e-4], jnp.float16)}
    assert float(jnp.square(grads["w"])[0]) == 0.0
    tx = alias(lr, mu_dtype=mu_dtype, nu_dtype=jnp.float32, weight_decay=0.0)
    state = tx.init(params)
    g = np.asarray(grads["w"], np.float64)
    for t in range(1, 4):
        updates, state = tx.update(grads, state, params)
        assert updates["w"].dtype == jnp.float16
        assert gc.apply_updates(params, updates)["w"].dtype == jnp.float16
        u = np.asarray(updates["w"], np.float64)
        assert np.all(np.isfinite(u))
        np.testing.assert_allclose(u, -lr * np.sign(g), rtol=rtol)
        (nu,) = [s.ema["w"] for s in _stat_states(state) if "b2" in s.hyperparams]
        assert nu.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(nu, np.float64), (1 - 0.999 ** t) * g ** 2,
                                   rtol=1e-5)
