"""SWATS against a plain reference written from the paper (Keskar & Socher 2017, Algorithm 1).

The run is chosen so that the switch happens mid-run: a 10-step linear warm-up to 3e-3, β2 = 0.9
(the estimate follows γ_k closely) and a tolerance of 1e-5. On the shared problem the rate
estimate then settles at step 101 (|Λ - γ_k| = 2.2e-6; the closest earlier step is 1.9e-5
away, at step 100), so rounding cannot move the switch, and 99 SGD steps follow.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc
from problems import INITIAL, initial_params, loss, max_relative_error, trajectory

STEPS = 200
PEAK, WARMUP, B1, B2, EPS, TOLERANCE = 3e-3, 10, 0.9, 0.9, 1e-9, 1e-5
SWITCH_STEP = 101


def warmup(count):
    """The learning rate of step ``count + 1``: linear warm-up, then constant (in float64:
    ``int32 / int`` would be float32)."""
    return PEAK * jnp.minimum(1.0, (count.astype(jnp.float64) + 1) / WARMUP)


def build(tolerance=TOLERANCE):
    return gc.swats(warmup, B1, B2, EPS, tolerance=tolerance)


SIZES = {k: len(v) for k, v in INITIAL.items()}
GRAD = jax.jit(jax.grad(lambda x: loss(unflatten(x))))


def unflatten(x):
    out, start = {}, 0
    for key, size in SIZES.items():
        out[key] = x[start:start + size]
        start += size
    return out


def paper_swats(steps):
    """Algorithm 1 of the paper on the flattened parameter vector, in float64 NumPy.

    Returns the params after each step (per leaf, ``(steps, n)``), the step ``k`` at which the
    switch happened and Λ.
    """
    x = np.concatenate([INITIAL[k] for k in SIZES]).astype(np.float64)
    m, a, v = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    lam, phase, sgd_rate, switch_step = 0.0, "adam", None, None
    history = []
    for k in range(1, steps + 1):
        g = np.asarray(GRAD(jnp.asarray(x)))
        if phase == "sgd":
            v = B1 * v + g
            x = x - (1 - B1) * sgd_rate * v
        else:
            m = B1 * m + (1 - B1) * g
            a = B2 * a + (1 - B2) * g * g
            alpha = PEAK * min(1.0, k / WARMUP)
            p = -alpha * np.sqrt(1 - B2 ** k) / (1 - B1 ** k) * m / (np.sqrt(a) + EPS)
            x = x + p
            if p @ g != 0:
                gamma = (p @ p) / (-(p @ g))
                lam = B2 * lam + (1 - B2) * gamma
                if k > 1 and abs(lam / (1 - B2 ** k) - gamma) < TOLERANCE:
                    phase, sgd_rate, switch_step = "sgd", lam / (1 - B2 ** k), k
                    v = np.zeros_like(x)
        history.append(x.copy())
    params = unflatten(np.stack(history).T)
    return {key: value.T for key, value in params.items()}, switch_step, sgd_rate


@pytest.fixture(scope="module")
def reference():
    return paper_swats(STEPS)


def run_switch(tx, steps=STEPS):
    """``(final switch_to_sgd state, switch step)`` of a closed-loop run: the step ``k`` (from
    1) after which the state's phase first reads "switched", 0 if never."""

    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return (gc.apply_updates(p, u), s), s[1].switched

    params = initial_params(jnp.float64)
    (_, state), switched = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    return state[1], jnp.where(switched.any(), jnp.argmax(switched) + 1, 0)


def test_reference_switches_mid_run(reference):
    _, switch_step, sgd_rate = reference
    assert switch_step == SWITCH_STEP
    assert 0 < sgd_rate < 10 * PEAK


def test_trajectory_matches_the_paper(reference):
    expected, _, _ = reference
    actual, _ = trajectory(build(), jnp.float64, STEPS)
    assert max_relative_error(actual, expected) <= 1e-10


def test_switch_step_and_rate_live_in_the_state(reference):
    _, switch_step, sgd_rate = reference
    state, step = jax.jit(run_switch, static_argnums=0)(build())
    assert bool(state.switched)
    assert int(step) == switch_step
    np.testing.assert_allclose(float(state.sgd_learning_rate), sgd_rate, rtol=1e-12)


def test_switch_decided_per_batch_member_under_vmap():
    """The tolerance is traced: each member of the batch switches at its own step (or never),
    in one compiled program (no Python branching on the phase)."""
    tolerances = jnp.asarray([0.0, 3e-5, TOLERANCE])
    states, steps = jax.jit(jax.vmap(lambda tol: run_switch(build(tol))))(tolerances)
    np.testing.assert_array_equal(states.switched, [False, True, True])
    np.testing.assert_array_equal(steps, [0, 63, SWITCH_STEP])
    assert float(states.sgd_learning_rate[0]) == 0.0


def test_first_step_is_the_papers_adam_step():
    """Step 1 of the Adam phase: ``m = (1-β1)g``, ``v = (1-β2)g²``, so with ε = 0
    ``p = -γ √(1-β2)/(1-β1) · (1-β1)g / (√(1-β2)|g|) = -γ sign(g)``."""
    tx = gc.swats(0.1, eps=0.0)
    g = {"w": jnp.asarray([2.0, -0.5]), "b": jnp.asarray([1e-3])}
    u, state = tx.update(g, tx.init(g), g)
    for key in g:
        np.testing.assert_allclose(u[key], -0.1 * np.sign(g[key]), rtol=1e-12)
    assert not bool(state[1].switched)


@pytest.mark.parametrize("kwargs, message", [
    ({"estimate_decay": 1.0}, r"switch_to_sgd: estimate_decay=1.0 is out of range"),
    ({"tolerance": -1.0}, r"switch_to_sgd: tolerance=-1.0 is out of range"),
])
def test_invalid_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gc.switch_to_sgd(gc.adam(1e-3), gc.sgd(1.0), **kwargs)
