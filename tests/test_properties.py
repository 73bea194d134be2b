"""Invariants, checked with hypothesis on random gradients and hyperparameters.

Every property runs through a module-level jitted function whose hyperparameters are traced
arguments, so hypothesis' examples reuse one compiled program per property (shapes are fixed).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradchain as gc
from gradchain.core.hyperparams import next_count

STEPS, SIZE = 6, 5
INT32_MAX = int(np.iinfo(np.int32).max)
FEW = settings(max_examples=25, deadline=None)

# Gradient sequences (one row per step): zeros included, tiny magnitudes (whose squares would
# underflow) excluded.
GRADS = hnp.arrays(np.float64, (STEPS, SIZE),
                   elements=st.floats(-1e3, 1e3).map(lambda x: 0.0 if abs(x) < 1e-6 else x))
LEARNING_RATES = st.floats(1e-6, 10.0)
DECAYS = st.floats(0.0, 0.9999)


def _updates(tx, grads, params=None):
    """The updates of ``STEPS`` steps of ``tx``, one per row of ``grads`` (one ``lax.scan``)."""
    params = jnp.linspace(-1.0, 1.0, SIZE) if params is None else params

    def step(state, g):
        u, state = tx.update(g, state, params)
        return state, u

    return jax.lax.scan(step, tx.init(params), grads)[1]


@jax.jit
def _sgd_plain_and_zero_momentum(lr, grads):
    return _updates(gc.sgd(lr), grads), _updates(gc.sgd(lr, momentum=0.0), grads)


@FEW
@given(lr=LEARNING_RATES, grads=GRADS)
def test_sgd_with_zero_momentum_is_plain_sgd(lr, grads):
    plain, zero_momentum = _sgd_plain_and_zero_momentum(lr, grads)
    np.testing.assert_array_equal(zero_momentum, plain)
    np.testing.assert_allclose(plain, -lr * grads, rtol=1e-15)


@jax.jit
def _adam_b1_zero_and_rms(lr, b2, eps, grads):
    adam = gc.adam(lr, b1=0.0, b2=b2, eps=eps)
    rms = gc.chain(gc.scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True),
                   gc.scale_by_learning_rate(lr))
    return _updates(adam, grads), _updates(rms, grads)


@FEW
@given(lr=LEARNING_RATES, b2=DECAYS, eps=st.floats(1e-12, 1e-3), grads=GRADS)
def test_adam_with_b1_zero_is_bias_corrected_rms_with_eps_outside_the_root(lr, b2, eps, grads):
    """Optax's documented identity (``scale_by_rms`` note): ``scale_by_rms(decay=b2,
    eps_in_sqrt=False, bias_correction=True)`` is ``scale_by_adam(b1=0, b2=b2)``."""
    adam, rms = _adam_b1_zero_and_rms(lr, b2, eps, grads)
    np.testing.assert_allclose(adam, rms, rtol=1e-14, atol=0)


@jax.jit
def _adam_updates(lr, b1, b2, eps, grads):
    return _updates(gc.adam(lr, b1=b1, b2=b2, eps=eps), grads)


def _adam_bound(lr, b1, b2, steps):
    """``lr · (1-b1)/(1-b1^t) · √((1-b2^t)/(1-b2) · Σ_{k<t} (b1²/b2)^k)`` for t = 1..steps.

    Cauchy-Schwarz on ``m_t = (1-b1) Σ b1^(t-i) g_i`` against ``v_t = (1-b2) Σ b2^(t-i) g_i²``
    bounds ``|m̂_t| / √v̂_t`` by this (ε > 0 only lowers the step); equality holds for
    ``g_i ∝ (b1/b2)^(t-i)``.
    """
    t = np.arange(1, steps + 1)
    ratio_sums = np.cumsum((b1 * b1 / b2) ** np.arange(steps))
    return lr * (1 - b1) / (1 - b1 ** t) * np.sqrt((1 - b2 ** t) / (1 - b2) * ratio_sums)


@FEW
@given(lr=LEARNING_RATES, b1=st.floats(0.0, 0.99), b2=st.floats(0.5, 0.9999),
       eps=st.floats(1e-12, 1e-3), grads=GRADS)
def test_adam_step_is_bounded(lr, b1, b2, eps, grads):
    updates = np.asarray(_adam_updates(lr, b1, b2, eps, grads))
    bound = _adam_bound(lr, b1, b2, STEPS)
    assert np.all(np.abs(updates) <= bound[:, None] * (1 + 1e-12))


@pytest.mark.parametrize("b1, b2", [(0.9, 0.999), (0.5, 0.6), (0.0, 0.9)])
def test_adam_bound_is_attained(b1, b2):
    """The bound is exact: gradients ``(b1/b2)^(T-i)`` reach it at the last step (ε = 0)."""
    lr = 0.1
    column = (b1 / b2) ** np.arange(STEPS - 1, -1, -1.0)
    grads = np.outer(column, np.linspace(0.5, 2.0, SIZE))
    updates = np.asarray(_adam_updates(lr, b1, b2, 0.0, grads))
    np.testing.assert_allclose(np.abs(updates[-1]), _adam_bound(lr, b1, b2, STEPS)[-1],
                               rtol=1e-12)


@FEW
@given(lr1=LEARNING_RATES, lr2=LEARNING_RATES, grads=GRADS)
def test_update_is_linear_in_the_learning_rate(lr1, lr2, grads):
    """The learning rate is the last stage (``scale_by_learning_rate``), so an alias' update is
    homogeneous and additive in it."""
    u1, u2 = _adam_updates(lr1, 0.9, 0.999, 1e-8, grads), _adam_updates(lr2, 0.9, 0.999, 1e-8,
                                                                          grads)
    np.testing.assert_allclose(_adam_updates(lr1 + lr2, 0.9, 0.999, 1e-8, grads), u1 + u2,
                               rtol=1e-14, atol=0)
    np.testing.assert_allclose(u2, (lr2 / lr1) * u1, rtol=1e-14, atol=0)


PARAM_DTYPES = [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64]


@FEW
@given(dtype=st.sampled_from(PARAM_DTYPES),
       values=hnp.arrays(np.float64, (SIZE,), elements=st.floats(-6e4, 6e4).map(
           lambda x: 0.0 if abs(x) < 1e-4 else x)))
def test_apply_updates_with_zero_updates_is_the_identity(dtype, values):
    """Every dtype, values up to float16's range. Subnormals are left out: XLA on CPU flushes
    them to zero in any addition (Optax's ``apply_updates`` alike), a property of the backend."""
    params = {"w": jnp.asarray(values, dtype), "b": jnp.asarray(values[:2], dtype)}
    zeros = jax.tree.map(jnp.zeros_like, params)
    new = gc.apply_updates(params, zeros)
    chex.assert_trees_all_equal(new, params)
    chex.assert_trees_all_equal_dtypes(new, params)


TRIPLES = {
    "momentum-rms-lr": (gc.scale_by_momentum(0.9, nesterov=True), gc.scale_by_rms(),
                        gc.scale_by_learning_rate(0.1)),
    "decay-adam-scale": (gc.add_decayed_weights(0.1), gc.scale_by_adam(), gc.scale(-0.5)),
    "optax-clip-stddev-momentum": (optax.clip(1.0), gc.scale_by_stddev(),
                                   gc.scale_by_momentum(0.5, dampening=0.2)),
}
ASSOCIATIVITY = {
    name: jax.jit(lambda grads, a=a, b=b, c=c: (
        _updates(gc.chain(a, gc.chain(b, c)), grads), _updates(gc.chain(gc.chain(a, b), c), grads),
        _updates(gc.chain(a, b, c), grads)))
    for name, (a, b, c) in TRIPLES.items()}


@pytest.mark.parametrize("name", TRIPLES)
@FEW
@given(grads=GRADS)
def test_chain_is_associative(name, grads):
    right, left, flat = ASSOCIATIVITY[name](grads)
    np.testing.assert_array_equal(right, flat)
    np.testing.assert_array_equal(left, flat)


@FEW
@given(count=st.integers(0, INT32_MAX))
def test_saturating_count_never_decreases(count):
    new = int(next_count(jnp.asarray(count, jnp.int32)))
    assert new == min(count + 1, INT32_MAX)
    assert new >= count


def test_adam_keeps_stepping_when_its_counts_saturate():
    """Counts started two steps below the int32 maximum: they rise to it and stay; the bias
    corrections are then 1 and the update is ``-lr · m / (√v + ε)`` (not 0 or NaN)."""
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    tx = gc.adam(lr, b1, b2, eps)
    params = {"w": jnp.zeros(3)}
    state = jax.tree.map(lambda x: jnp.full_like(x, INT32_MAX - 2) if x.dtype == jnp.int32 else x,
                         tx.init(params))
    counts = [c for c in jax.tree.leaves(state) if c.dtype == jnp.int32]
    assert counts
    g = np.array([1.0, -2.0, 0.5])
    m, v = np.zeros(3), np.zeros(3)
    for _ in range(4):
        updates, state = tx.update({"w": jnp.asarray(g)}, state, params)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        np.testing.assert_allclose(updates["w"], -lr * m / (np.sqrt(v) + eps), rtol=1e-12)
        new_counts = [c for c in jax.tree.leaves(state) if c.dtype == jnp.int32]
        assert all(int(n) >= int(c) for n, c in zip(new_counts, counts))
        counts = new_counts
    assert {int(c) for c in counts} == {INT32_MAX}
