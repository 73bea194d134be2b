"""8-bit block-wise quantized statistics (``gradchain.quantized``): the code, its error bound,
its memory, training with it, and the state contract (jit, vmap, checkpoints, validation)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradchain as gc
from gradchain.core.quantized import code_table
from problems import initial_params, loss, max_relative_error, trajectory

# The shared problem's leaves have 6 and 3 elements: every leaf quantized, in blocks of 4 (the
# second block of ``w`` and the only block of ``b`` are padded).
TINY = gc.quantized(block_size=4, min_size=0)
SIZE = 300


@functools.lru_cache(maxsize=None)
def round_trip(block_size):
    fmt = gc.quantized(block_size=block_size, min_size=0)
    return jax.jit(lambda x: (fmt.encode(x), fmt.decode(fmt.encode(x))))


def blocks_of(x, block_size):
    flat = np.asarray(x, np.float64).ravel()
    return np.pad(flat, (0, -flat.size % block_size)).reshape(-1, block_size)


def test_code_tables():
    """Signed: 127 magnitudes of each sign and 0; unsigned: 256 levels from 1e-8 (no zero),
    twice as fine at the top; both monotone in the magnitude bits, the block's absmax (1)
    exact."""
    signed, unsigned = code_table(True), code_table(False)
    assert signed.shape == unsigned.shape == (256,)
    np.testing.assert_array_equal(signed[128:], -signed[:128])
    assert np.all(np.diff(signed[:128]) > 0) and np.all(np.diff(unsigned) > 0)
    assert signed[0] == 0 and signed[127] == unsigned[255] == 1
    np.testing.assert_allclose(unsigned[0], 1e-8)  # Li et al. 2023: no zero for v
    assert len(np.unique(signed)) == 255  # +0 and -0
    np.testing.assert_allclose(1 - signed[126], 0.9 / 64)
    np.testing.assert_allclose(1 - unsigned[254], 0.9 / 128)
    # Dynamic: relative precision survives down to 1e-6 (signed) / 1e-7 (unsigned) of absmax.
    np.testing.assert_allclose(signed[1], 1e-6)
    np.testing.assert_allclose(unsigned[1], 1e-7)


# Magnitudes from 1e-9 to 1e3 with both signs, or non-negative only; one value per element.
magnitudes = st.floats(float(np.float32(1e-9)), 1e3, width=32)
mixed = hnp.arrays(np.float32, SIZE, elements=st.one_of(magnitudes, magnitudes.map(lambda v: -v),
                                                        st.just(0.0)))
nonnegative = hnp.arrays(np.float32, SIZE, elements=st.one_of(magnitudes, st.just(0.0)))


@settings(max_examples=30, deadline=None)
@given(x=st.one_of(mixed, nonnegative), block_size=st.sampled_from([1, 7, 64, 512]))
def test_encode_decode_error_is_the_nearest_level_per_block(x, block_size):
    """Each element is decoded as the nearest level of its block's code (checked against a
    brute-force search of the table), within ``0.9/128`` (signed) or ``0.9/256`` (unsigned) of
    the block's absmax; a block uses the unsigned code exactly when it has no negative value."""
    q, decoded = round_trip(block_size)(jnp.asarray(x))
    assert q.codes.dtype == jnp.uint8 and q.codes.shape == x.shape
    assert q.scales.dtype == jnp.float32 and q.scales.shape == (-(-SIZE // block_size),)
    blocks = blocks_of(x, block_size)
    scales = np.asarray(q.scales, np.float64)
    unsigned = np.signbit(scales)  # -0.0 for an all-zero block
    np.testing.assert_array_equal(unsigned, blocks.min(axis=1) >= 0)
    np.testing.assert_array_equal(np.abs(scales), np.abs(blocks).max(axis=1))
    absmax = np.abs(scales)[:, None]
    y = blocks / np.where(absmax > 0, absmax, 1)
    tables = np.where(unsigned[:, None, None], code_table(False), code_table(True))
    nearest = np.min(np.abs(y[..., None] - tables), axis=-1)
    error = np.abs(blocks - blocks_of(decoded, block_size))
    assert np.all(error <= absmax * (nearest + 1e-6))
    bound = np.where(unsigned, 0.9 / 256, 0.9 / 128)[:, None] * absmax
    assert np.all(error <= bound * (1 + 1e-5))
    # The block's largest magnitude comes back exactly, up to float32 ulps, and so do the zeros
    # of signed blocks and of all-zero blocks; in other unsigned blocks 0 becomes 1e-8 A.
    top = np.abs(blocks) == absmax
    np.testing.assert_allclose(np.abs(blocks_of(decoded, block_size))[top], absmax.repeat(
        block_size, 1)[top], rtol=1e-6)
    zero_decodes = (blocks == 0) & (~unsigned[:, None] | (absmax == 0))
    assert np.all(blocks_of(decoded, block_size)[zero_decodes] == 0)


def test_unsigned_code_halves_the_error_of_a_nonnegative_block():
    """The same values in [0.1, 1] with one tiny negative element added: the negative element
    forces the signed code and doubles the largest error."""
    x = jnp.linspace(0.1, 1.0, 256, dtype=jnp.float32)
    with_negative = x.at[0].set(-1e-3)
    positive_q, positive = round_trip(256)(x)
    mixed_q, mixed_back = round_trip(256)(with_negative)
    assert float(positive_q.scales[0]) < 0 < float(mixed_q.scales[0])
    positive_error = float(jnp.max(jnp.abs(positive - x)))
    mixed_error = float(jnp.max(jnp.abs(mixed_back - with_negative)[1:]))
    assert positive_error <= 0.9 / 256 * (1 + 1e-5)
    assert 0.9 / 256 < mixed_error <= 0.9 / 128 * (1 + 1e-5)


def gpt2_small_shapes(layers=12, width=768, vocab=50257, context=1024):
    """GPT-2 small's parameter shapes: embeddings, per block 2 layer norms, attention and MLP
    kernels with biases, a final layer norm (124,439,808 parameters)."""
    tree = {"wte": (vocab, width), "wpe": (context, width),
            "ln_f": {"scale": (width,), "bias": (width,)}}
    for i in range(layers):
        tree[f"h{i}"] = {
            "ln_1": {"scale": (width,), "bias": (width,)},
            "c_attn": {"kernel": (width, 3 * width), "bias": (3 * width,)},
            "c_proj": {"kernel": (width, width), "bias": (width,)},
            "ln_2": {"scale": (width,), "bias": (width,)},
            "c_fc": {"kernel": (width, 4 * width), "bias": (4 * width,)},
            "mlp_proj": {"kernel": (4 * width, width), "bias": (width,)}}
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32), tree,
                        is_leaf=lambda s: isinstance(s, tuple))


def test_adam_state_with_both_moments_quantized_is_at_most_2_1_bytes_per_parameter():
    params = gpt2_small_shapes()
    n = sum(p.size for p in jax.tree.leaves(params))
    assert n == 124_439_808
    per_param, states = {}, {}
    for name, dtype in [("float32", None), ("bfloat16", jnp.bfloat16), ("8-bit", gc.quantized())]:
        states[name] = jax.eval_shape(gc.adam(1e-3, mu_dtype=dtype, nu_dtype=dtype).init, params)
        per_param[name] = gc.state_bytes(states[name]) / n
    assert per_param["float32"] == pytest.approx(8.0, abs=1e-6)
    assert per_param["bfloat16"] == pytest.approx(4.0, abs=1e-6)
    assert 2.0 < per_param["8-bit"] <= 2.1
    # Kernels quantized, biases and layer norms (under min_size=4096 elements) kept in float32.
    mu = gc.find_state(states["8-bit"], "ema", hyperparam="b1")
    assert isinstance(mu["h0"]["c_fc"]["kernel"], gc.QuantizedArray)
    assert mu["h0"]["c_fc"]["kernel"].codes.dtype == jnp.uint8
    assert mu["h0"]["c_fc"]["bias"].dtype == jnp.float32


@pytest.mark.parametrize("make", [
    lambda q: gc.ema(0.9, dtype=q), lambda q: gc.accumulate(initial_value=0.1, dtype=q),
    lambda q: gc.scale_by_momentum(0.9, accumulator_dtype=q),
    lambda q: gc.nesterov_first_moment(0.9, dtype=q), lambda q: gc.max_v(dtype=q),
    lambda q: gc.scale_by_delta_rms(dtype=q)],
    ids=["ema", "accumulate", "scale_by_momentum", "nesterov_first_moment", "max_v",
         "scale_by_delta_rms"])
def test_moment_primitives_accept_the_format_and_match_float32(make):
    """Each statistic is a QuantizedArray, and three updates stay within the code's error of
    the float32 statistic's (outputs are the float32 values computed from decoded state)."""
    params = {"w": jnp.linspace(-1.0, 1.0, 64, dtype=jnp.float32)}
    grads = {"w": jnp.cos(jnp.arange(64.0, dtype=jnp.float32))}
    quantized_tx, float_tx = make(gc.quantized(block_size=16, min_size=0)), make(jnp.float32)
    q_state, f_state = quantized_tx.init(params), float_tx.init(params)
    assert any(isinstance(x, gc.QuantizedArray) for x in jax.tree.leaves(
        q_state, is_leaf=lambda x: isinstance(x, gc.QuantizedArray)))
    for _ in range(3):
        q_out, q_state = quantized_tx.update(grads, q_state, params)
        f_out, f_state = float_tx.update(grads, f_state, params)
        assert q_out["w"].dtype == jnp.float32
        np.testing.assert_allclose(q_out["w"], f_out["w"], atol=0.03 * float(
            jnp.max(jnp.abs(f_out["w"]))))


@pytest.mark.parametrize("make", [gc.adam, gc.nadam], ids=["adam", "nadam"])
def test_training_reaches_the_float32_loss(make):
    """200 steps on the shared problem (float32, closed loop) with both moments in 8 bits: the
    params stay within 3% of the float32 run's at every step (measured: 1.6% for Adam, 0.5%
    for NAdam; bfloat16 moments: 0.5%) and the final loss within 1e-4 of it, relatively
    (measured: 6e-6 and 3e-6)."""
    reference, _ = trajectory(make(0.03), jnp.float32)
    quantized, _ = trajectory(make(0.03, mu_dtype=TINY, nu_dtype=TINY), jnp.float32)
    assert max_relative_error(quantized, reference) < 0.03
    final = {name: float(loss(jax.tree.map(lambda x: x[-1], run)))
             for name, run in [("float32", reference), ("8-bit", quantized)]}
    assert final["float32"] < 0.05 * float(loss(initial_params(jnp.float32)))
    assert final["8-bit"] == pytest.approx(final["float32"], rel=1e-4)


def adam_8bit():
    return gc.adam(0.03, mu_dtype=TINY, nu_dtype=TINY)


@jax.jit
def adam_step(params, state):
    updates, state = adam_8bit().update(jax.grad(loss)(params), state, params)
    return gc.apply_updates(params, updates), state


def run(params, state, steps):
    for _ in range(steps):
        params, state = adam_step(params, state)
    return params, state


def test_vmap_over_a_batch_of_problems_matches_a_loop():
    """Two problems stepped together under ``vmap`` (codes and scales batched) equal two
    separate steps, to float32 rounding (the batched program is compiled differently)."""
    starts = [initial_params(jnp.float32), jax.tree.map(lambda x: 0.5 * x,
                                                        initial_params(jnp.float32))]
    tx = adam_8bit()
    batched = jax.tree.map(lambda *xs: jnp.stack(xs), *[(p, tx.init(p)) for p in starts])
    stepped = jax.jit(jax.vmap(adam_step))(*batched)
    looped = [adam_step(p, tx.init(p)) for p in starts]
    chex.assert_trees_all_close(stepped, jax.tree.map(lambda *xs: jnp.stack(xs), *looped),
                                rtol=1e-6, atol=0)


def test_checkpoint_round_trip_resumes_bit_identically(tmp_path):
    """Saved with Orbax after 4 steps and restored into a fresh init's abstract tree: the
    QuantizedArray nodes come back as such and 4 more steps equal the uninterrupted run."""
    params = initial_params(jnp.float32)
    params, state = run(params, adam_8bit().init(params), 4)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "checkpoint", {"params": params, "state": state})
    checkpointer.wait_until_finished()
    fresh = initial_params(jnp.float32)
    target = {"params": fresh, "state": adam_8bit().init(fresh)}
    restored = checkpointer.restore(tmp_path / "checkpoint",
                                    jax.tree.map(ocp.utils.to_shape_dtype_struct, target))
    chex.assert_trees_all_equal_structs(restored["state"], state)
    chex.assert_trees_all_equal(restored, {"params": params, "state": state})
    chex.assert_trees_all_equal(run(restored["params"], restored["state"], 4),
                                run(params, state, 4))


def test_compiled_step_holds_only_the_new_moments_as_temporaries():
    """Adam with both moments in 8 bits, one leaf of 10,000 elements (not whole blocks), jitted
    with params and state donated: XLA's temporaries are the new ``m`` and ``v`` in float32
    (8 B/param; measured 8.07), no decoded or padded copies (24.6 B/param before encoding and
    decoding worked on the flat leaf with one two-result block reduction)."""
    n = 10_000
    tx = gc.adam(1e-3, mu_dtype=gc.quantized(), nu_dtype=gc.quantized())
    params = {"w": jnp.linspace(-1.0, 1.0, n, dtype=jnp.float32)}

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return gc.apply_updates(params, updates), state

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(
        params, tx.init(params), params).compile()
    memory = compiled.memory_analysis()
    if memory is None:
        pytest.skip("this backend gives no memory analysis")
    assert memory.temp_size_in_bytes <= 9 * n


@pytest.mark.parametrize("kwargs, message", [
    ({"bits": 4}, "quantized: bits=4 is not supported; expected bits=8"),
    ({"bits": True}, "quantized: bits=True is not supported"),
    ({"block_size": 0}, r"quantized: block_size=0 is out of range; expected block_size in "
                        r"\[1, inf\)"),
    ({"block_size": 2.5}, "quantized: block_size=2.5 is not an integer"),
    ({"min_size": -1}, r"quantized: min_size=-1 is out of range; expected min_size in "
                       r"\[0, inf\)")])
def test_bad_arguments_are_refused_naming_quantized(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gc.quantized(**kwargs)


def test_format_is_a_value_and_integer_dtypes_are_still_refused():
    assert gc.quantized() == gc.quantized(8, 256) and hash(gc.quantized()) == hash(
        gc.quantized(bits=8))
    assert repr(gc.quantized()) == "quantized(bits=8, block_size=256, min_size=4096)"
    with pytest.raises(TypeError, match="ema: dtype=int8 is not a floating-point dtype"):
        gc.ema(0.9, dtype=jnp.int8)
