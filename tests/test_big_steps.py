"""Long runs: step counts and steps beyond 2^31 in 32-bit mode, exact integer step arithmetic
past 2^24 (where a float32 step rounds) and at the saturated count (int32 max).

The suite runs with ``jax_enable_x64`` (conftest); every check here builds and evaluates inside
``jax.enable_x64(False)``, JAX's default mode, where a Python int beyond int32 used to overflow.
References: Optax's schedules evaluated with x64 on (exact 64-bit steps), Optax's own 32-bit
numbers where Optax has them, and the NumPy closed forms of ``test_schedules``.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
from gradchain import schedules as S
from test_schedules import (constant_formula, cosine_formula, cyclic_formula, linear_formula,
                            multi_step_formula, one_cycle_formula, polynomial_formula,
                            step_formula, warm_restarts_formula)

MAX = int(np.iinfo(np.int32).max)  # where the optimizer's int32 step count saturates
SIZES = [10**9, 10**10]


def x32():
    return jax.enable_x64(False)


def big_steps(n):
    """Python-int steps around a duration ``n`` (some beyond int32), and the saturated count.

    A Python int beyond int32 becomes a float32 step (Optax's cast), rounded by up to 2^-24 of
    its size (512 steps at 1e10): next to a boundary it may land on the other side, so steps
    beyond int32 keep 1000 steps away from the boundaries; within int32 they are exact.
    """
    near = 1 if n <= MAX else 1000
    return [0, 5, n // 10 + 7, n // 2 + 1, n - near, n, n + near, 2 * n, MAX]


def evaluate_32_bit(make, steps):
    """Build ``make()`` and evaluate it at each step in 32-bit mode: Python ints as given, and
    the saturated count also as the optimizer's int32 count, eagerly and under ``jit``."""
    with x32():
        schedule = make()
        values = [schedule(t) for t in steps]
        count = jnp.asarray(MAX, jnp.int32)
        values += [schedule(count), jax.jit(schedule)(count)]
        assert all(jnp.result_type(v) == jnp.float32 for v in values)
        return np.asarray([float(v) for v in values])


def test_cosine_decay_at_1e9_and_1e10_steps_in_32_bit_mode():
    """The reported overflow, and Optax's 32-bit numbers (975.53 at a tenth of 1e9 steps)."""
    with x32():
        assert float(S.cosine_decay_schedule(1000.0, 10**10)(5)) == 1000.0
        for n in SIZES:
            for t in (5, n // 10, n // 2, jnp.asarray(MAX, jnp.int32)):
                ours = S.cosine_decay_schedule(1000.0, n)(t)
                chex.assert_trees_all_close(ours, optax.cosine_decay_schedule(1000.0, n)(t),
                                            rtol=1e-6)
        assert float(S.cosine_decay_schedule(1000.0, 10**9)(10**8)) == pytest.approx(975.528,
                                                                                     abs=1e-3)


def optax_pairs(n):
    """``name: (factory taking the module, gradchain.schedules or optax, scale)``."""
    return {
        "cosine_decay": (lambda m: m.cosine_decay_schedule(1000.0, n, 0.1, 2.0), 1000.0),
        "warmup_cosine_decay": (lambda m: m.warmup_cosine_decay_schedule(
            0.0, 1000.0, n // 10, n, 1.0), 1000.0),
        "polynomial": (lambda m: m.polynomial_schedule(1000.0, 1.0, 2, n, n // 10), 1000.0),
        "linear": (lambda m: m.linear_schedule(1000.0, 1.0, n, 3), 1000.0),
        "warmup_constant": (lambda m: m.warmup_constant_schedule(0.0, 1000.0, n), 1000.0),
        "join": (lambda m: m.join_schedules(
            [m.linear_schedule(1000.0, 0.0, n), m.constant_schedule(7.0)], [n // 2]), 1000.0),
    }


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", list(optax_pairs(1)))
def test_optax_named_schedules_at_big_step_counts_in_32_bit_mode(name, n):
    make, scale = optax_pairs(n)[name]
    steps = big_steps(n)
    ours = evaluate_32_bit(lambda: make(S), steps)
    exact = np.asarray([float(make(optax)(t)) for t in steps + [MAX, MAX]])  # x64: 64-bit steps
    np.testing.assert_allclose(ours, exact, rtol=2e-6, atol=2e-6 * scale)
    if n < MAX:  # Optax's own 32-bit numbers, where it has them (it overflows past int32)
        with x32():
            theirs = np.asarray([float(make(optax)(t)) for t in steps])
        np.testing.assert_allclose(ours[:len(steps)], theirs, rtol=2e-6, atol=2e-6 * scale)


def torch_rows(n):
    """``name: (gradchain factory, NumPy closed form of t)``, values in [0, 1]."""
    return {
        "step_lr": (lambda: S.step_lr(1.0, n // 3, 0.5),
                    lambda t: step_formula(t, 1.0, n // 3, 0.5)),
        "multi_step_lr": (lambda: S.multi_step_lr(1.0, [n // 2, n, 2 * n], 0.5),
                          lambda t: multi_step_formula(t, 1.0, [n // 2, n, 2 * n], 0.5)),
        "constant_lr": (lambda: S.constant_lr(1.0, 0.5, n),
                        lambda t: constant_formula(t, 1.0, 0.5, n)),
        "polynomial_lr": (lambda: S.polynomial_lr(1.0, n, 2.0),
                          lambda t: polynomial_formula(t, 1.0, n, 2.0)),
        "linear_lr": (lambda: S.linear_lr(1.0, 0.5, 1.0, n),
                      lambda t: linear_formula(t, 1.0, 0.5, 1.0, n)),
        "cosine_annealing_lr": (lambda: S.cosine_annealing_lr(1.0, n, 0.1),
                                lambda t: cosine_formula(t, 1.0, n, 0.1)),
        "warm_restarts": (lambda: S.cosine_annealing_warm_restarts(1.0, n // 3),
                          lambda t: warm_restarts_formula(t, 1.0, n // 3)),
        "warm_restarts_doubling": (lambda: S.cosine_annealing_warm_restarts(1.0, n // 7, 2),
                                   lambda t: warm_restarts_formula(t, 1.0, n // 7, 2)),
        "cyclic_lr": (lambda: S.cyclic_lr(0.0, 1.0, n // 3, n // 5),
                      lambda t: cyclic_formula(t, 0.0, 1.0, n // 3, n // 5)[0]),
        "one_cycle_lr": (lambda: S.one_cycle_lr(1.0, n, three_phase=True),
                         lambda t: one_cycle_formula(t, 1.0, n, three_phase=True)[0]),
    }


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", list(torch_rows(1)))
def test_torch_named_schedules_at_big_step_counts_in_32_bit_mode(name, n):
    make, closed_form = torch_rows(n)[name]
    steps = big_steps(n)
    ours = evaluate_32_bit(make, steps)
    expected = [closed_form(np.asarray([t], np.int64))[0] for t in steps + [MAX, MAX]]
    # A Python-int step beyond int32 is a float32 here (Optax's cast): rounded by up to 2^-24
    # of its size, which moves a cosine by about 1e-6 of its scale.
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)


# ----- exact integer step arithmetic: past 2^24 and at the saturated count ---------------------

AROUND_2_24 = np.arange(2**24 - 3, 2**24 + 13)
BELOW_MAX = np.arange(MAX - 15, MAX + 1)

EXACT_ROWS = {
    "cyclic_lr": (lambda: S.cyclic_lr(0.0, 1.0, 3, 5),
                  lambda t: cyclic_formula(t, 0.0, 1.0, 3, 5)[0]),
    "cyclic_momentum": (lambda: S.cyclic_momentum(0.8, 0.9, 2, 2),
                        lambda t: cyclic_formula(t, 0.0, 1.0, 2, 2, base_momentum=0.8,
                                                 max_momentum=0.9)[1]),
    "step_lr": (lambda: S.step_lr(1.0, 2**24 + 1, 0.5),
                lambda t: step_formula(t, 1.0, 2**24 + 1, 0.5)),
    "multi_step_lr": (lambda: S.multi_step_lr(1.0, [2**24 + 1, 2**24 + 3, MAX - 2, MAX], 0.5),
                      lambda t: multi_step_formula(t, 1.0, [2**24 + 1, 2**24 + 3, MAX - 2, MAX],
                                                   0.5)),
    "constant_lr": (lambda: S.constant_lr(1.0, 0.5, 2**24 + 1),
                    lambda t: constant_formula(t, 1.0, 0.5, 2**24 + 1)),
    "warm_restarts": (lambda: S.cosine_annealing_warm_restarts(1.0, 2**24 + 1),
                      lambda t: warm_restarts_formula(t, 1.0, 2**24 + 1)),
    "warm_restarts_tripling": (lambda: S.cosine_annealing_warm_restarts(1.0, 5, 3),
                               lambda t: warm_restarts_formula(t, 1.0, 5, 3)),
    "join_schedules": (lambda: S.join_schedules(
        [S.constant_schedule(1.0), S.constant_schedule(2.0), S.constant_schedule(3.0)],
        [2**24 + 1, MAX]), lambda t: 1.0 + (t >= 2**24 + 1) + (t >= MAX)),
}


@pytest.mark.parametrize("name", list(EXACT_ROWS))
def test_integer_step_arithmetic_is_exact_past_2_24_and_at_the_saturated_count(name):
    """On the optimizer's int32 counts in 32-bit mode, where a float32 step would round
    2^24 + 1 to 2^24 (a cycle position off by one, a milestone a step late)."""
    make, closed_form = EXACT_ROWS[name]
    counts = np.concatenate([AROUND_2_24, BELOW_MAX])
    with x32():
        ours = np.asarray(jax.jit(jax.vmap(make()))(jnp.asarray(counts, jnp.int32)))
    with np.errstate(over="ignore"):  # the closed form's unused triangular2 scale, 2^-(2^28)
        expected = closed_form(counts.astype(np.int64))
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-7)


def lookahead_syncs(start, period, updates=8):
    """Which of ``updates`` Lookahead updates sync, from a state whose count is ``start``, in
    32-bit mode (a sync is where the slow weights move)."""
    with x32():
        params = {"w": jnp.ones(3, jnp.float32)}
        grads = {"w": jnp.full(3, 0.5, jnp.float32)}
        tx = gc.lookahead(gc.sgd(0.1), period, 0.5)
        state = tx.init(params)._replace(count=jnp.asarray(start, jnp.int32))
        step = jax.jit(tx.update)
        syncs = []
        for _ in range(updates):
            updates_, new_state = step(grads, state, params)
            params = optax.apply_updates(params, updates_)
            moved = bool(jnp.any(new_state.slow["w"] != state.slow["w"]))
            if moved:  # a sync lands the params exactly on the new slow weights
                chex.assert_trees_all_equal(params, new_state.slow)
            syncs.append(moved)
            state = new_state
        return syncs, int(state.count)


def expected_syncs(start, period, updates=8):
    """Update ``t`` (the count after it) syncs when ``t mod k = 0``; once the count saturates
    it stops advancing and only ``k = 1`` keeps syncing."""
    syncs, count = [], start
    for _ in range(updates):
        advanced = count < MAX
        count = min(count + 1, MAX)
        syncs.append(period == 1 or (advanced and count % period == 0))
    return syncs


@pytest.mark.parametrize("start, period", [
    (2**24 - 4, 4),   # float32 rounds 2^24 + 1 to 2^24: syncs at the wrong counts
    (2**24 + 1, 3),
    (2**25 + 1, 5),
    (MAX - 5, 2),     # up to the saturated count and past it
    (MAX - 3, 1),
    (MAX - 4, MAX),   # MAX is a multiple of k: one sync at MAX, none after
])
def test_lookahead_syncs_past_2_24_and_at_the_saturated_count(start, period):
    syncs, count = lookahead_syncs(start, period)
    assert syncs == expected_syncs(start, period)
    assert count == min(start + 8, MAX)


def test_gradient_noise_at_the_saturated_count_is_finite_and_annealed():
    """σ_t² = η / (1 + t)^γ at t = 2^31 - 1 (``1 + count`` in int32 would wrap to -2^31)."""
    with x32():
        tx = gc.add_gradient_noise(0.3, 0.55, key=0)
        zeros = {"w": jnp.zeros(4096, jnp.float32)}
        state = tx.init(zeros)._replace(count=jnp.asarray(MAX, jnp.int32))
        noise, state = jax.jit(tx.update)(zeros, state)
    sigma = np.sqrt(0.3 / 2.0**(31 * 0.55))
    assert int(state.count) == MAX
    assert np.std(np.asarray(noise["w"])) == pytest.approx(sigma, rel=0.05)
