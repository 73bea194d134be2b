"""Clipping by value, by global norm, per block and adaptively (AGC): Optax's numbers in float32
and float64 (measured: bit-identical), the invariants each promises (hypothesis), bfloat16 leaves,
and refused arguments."""

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st

from gradchain.clipping.adaptive import adaptive_grad_clip, unitwise_norm
from gradchain.clipping.block_rms import clip_by_block_rms
from gradchain.clipping.global_norm import clip_by_global_norm, global_norm
from gradchain.clipping.value import clip

SHAPES = {"bias": (5,), "dense": (4, 3), "heads": (4, 2, 3), "conv": (3, 3, 2, 4),
          "conv3d": (2, 2, 2, 3, 2)}


def tree(seed, scale, dtype):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(scale * rng.normal(size=s), dtype) for k, s in SHAPES.items()}


PAIRS = [
    ("clip", clip(0.3), optax.clip(0.3)),
    ("clip_by_global_norm tight", clip_by_global_norm(0.5), optax.clip_by_global_norm(0.5)),
    ("clip_by_global_norm loose", clip_by_global_norm(1e3), optax.clip_by_global_norm(1e3)),
    ("clip_by_block_rms", clip_by_block_rms(0.8), optax.clip_by_block_rms(0.8)),
    ("adaptive_grad_clip", adaptive_grad_clip(0.05), optax.adaptive_grad_clip(0.05)),
    ("adaptive_grad_clip eps", adaptive_grad_clip(0.1, eps=0.5), optax.adaptive_grad_clip(
        0.1, eps=0.5)),
    ("adaptive_grad_clip axis", adaptive_grad_clip(0.05, axis=-1),
     optax.adaptive_grad_clip(0.05, axis=-1)),
]


@jax.jit
def all_pairs(updates, params):
    return [(ours.update(updates, ours.init(params), params)[0],
             theirs.update(updates, theirs.init(params), params)[0])
            for _, ours, theirs in PAIRS]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_same_numbers_as_optax(dtype):
    updates = tree(0, 1.0, dtype)
    params = tree(1, 1.0, dtype)
    params["bias"] = jnp.zeros(5, dtype)  # zero-initialised weights: AGC's eps at work
    results = all_pairs(updates, params)
    for (name, _, _), (ours, theirs) in zip(PAIRS, results):
        chex.assert_trees_all_close(ours, theirs, rtol=1e-6 if dtype == jnp.float32 else 1e-14,
                                    atol=0, custom_message=name)
        if "loose" not in name:  # every clipper here changes something, or the test is idle
            assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(ours),
                                                             jax.tree.leaves(updates))), name


FINITE = st.floats(-1e3, 1e3, allow_subnormal=False, width=64)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float64, (2, 3), elements=FINITE), hnp.arrays(np.float64, 4, elements=FINITE),
       st.floats(1e-3, 10.0))
def test_invariants(a, b, limit):
    updates = {"a": jnp.asarray(a), "b": jnp.asarray(b)}
    value, norm, block = invariants_of(updates, limit)
    assert all(float(jnp.max(jnp.abs(x))) <= limit for x in jax.tree.leaves(value))
    original = float(global_norm(updates))
    assert float(global_norm(norm)) <= limit * (1 + 1e-12)
    if original < limit:
        chex.assert_trees_all_equal(norm, updates)
    else:  # same direction, scaled by limit / original
        chex.assert_trees_all_close(norm, jax.tree.map(lambda u: u * limit / original, updates),
                                    rtol=1e-12, atol=1e-300)
    for x, u in zip(jax.tree.leaves(block), jax.tree.leaves(updates)):
        assert float(jnp.sqrt(jnp.mean(x * x))) <= limit * (1 + 1e-12)
        assert np.allclose(x * float(jnp.sqrt(jnp.mean(u * u))), u * float(jnp.sqrt(
            jnp.mean(x * x))), rtol=1e-12, atol=1e-300)


@jax.jit
def invariants_of(updates, limit):
    return [tx.update(updates, tx.init(updates))[0]
            for tx in (clip(limit), clip_by_global_norm(limit), clip_by_block_rms(limit))]


def test_bfloat16_norms_are_computed_in_float32():
    updates = {"a": jnp.full(4096, 0.01, jnp.bfloat16), "b": jnp.full(3, 2.0, jnp.bfloat16)}
    out, _ = clip_by_global_norm(1.0).update(updates, clip_by_global_norm(1.0).init(updates))
    exact = np.sqrt(4096 * np.float32(jnp.bfloat16(0.01)) ** 2 + 3 * 4.0)
    assert out["a"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.float32(out["b"]), 2.0 / exact, rtol=4e-3)
    assert abs(float(global_norm(updates)) - exact) < 1e-4 * exact


def test_unitwise_norm_units():
    x = jnp.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_allclose(unitwise_norm(x)[0], np.linalg.norm(np.asarray(x), axis=0))
    np.testing.assert_allclose(unitwise_norm(jnp.arange(3.0).reshape(1, 3)),
                               np.full((1, 3), np.sqrt(5.0)))
    with pytest.raises(ValueError, match=r"no default unit for an array of shape "
                                         r"\(2, 1, 1, 1, 1, 2\); give axis"):
        unitwise_norm(jnp.ones((2, 1, 1, 1, 1, 2)))
    np.testing.assert_allclose(unitwise_norm(jnp.ones((2, 1, 1, 1, 1, 2)), axis=(0, 5)), 2.0)


def test_refused_arguments_name_the_argument():
    cases = [(lambda: clip(-0.1), r"clip: max_delta=-0.1 is out of range; expected max_delta in "
                                  r"\[0, inf\]"),
             (lambda: clip_by_global_norm(0.0), r"clip_by_global_norm: max_norm=0.0 .*\(0, inf\]"),
             (lambda: clip_by_block_rms(-1), r"clip_by_block_rms: threshold=-1 is out of range"),
             (lambda: adaptive_grad_clip(0), r"adaptive_grad_clip: clipping=0 is out of range"),
             (lambda: adaptive_grad_clip(0.1, eps=-1e-3), r"adaptive_grad_clip: eps=-0.001")]
    for build, message in cases:
        with pytest.raises(ValueError, match=message):
            build()
    with pytest.raises(ValueError, match=r"adaptive_grad_clip: update needs params"):
        adaptive_grad_clip(0.1).update({"a": jnp.ones(2)}, adaptive_grad_clip(0.1).init(
            {"a": jnp.ones(2)}))


def test_thresholds_live_in_the_state_and_change_without_recompiling():
    tx = clip_by_global_norm(1.0)
    updates = {"a": jnp.full(4, 3.0)}
    state = tx.init(updates)
    traces = []
    step = jax.jit(lambda u, s: (traces.append(1), tx.update(u, s))[1])
    first, _ = step(updates, state)
    state = state._replace(hyperparams={**state.hyperparams,
                                        "max_norm": 3 * state.hyperparams["max_norm"]})
    second, _ = step(updates, state)
    assert len(traces) == 1
    np.testing.assert_allclose(global_norm(first), 1.0)
    np.testing.assert_allclose(global_norm(second), 3.0)
