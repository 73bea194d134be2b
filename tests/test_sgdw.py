"""SGDW's paper form (``multiplier``): ``θ -= η_t (α b_t + λθ)`` against a NumPy loop of that
formula with a cosine multiplier; the default form is checked against Optax's chain through the
registry (tests/registry.py)."""

import jax
import jax.numpy as jnp
import numpy as np

import gradchain as gc
from problems import INITIAL, loss, max_relative_error, trajectory

STEPS, ALPHA, MOMENTUM, DECAY = 200, 0.02, 0.9, 0.1


def multiplier(count):
    """η_t: cosine from 1 to 0.1 over the run (``count`` from 0)."""
    return 0.1 + 0.45 * (1 + jnp.cos(jnp.pi * count.astype(jnp.float64) / STEPS))


def numpy_sgdw(steps):
    grad = jax.jit(jax.grad(loss))
    theta = {k: np.asarray(v, np.float64) for k, v in INITIAL.items()}
    buffer = {k: np.zeros_like(v) for k, v in theta.items()}
    history = {k: [] for k in theta}
    for t in range(steps):
        g = {k: np.asarray(v) for k, v in grad({k: jnp.asarray(v) for k, v in theta.items()})
             .items()}
        eta = 0.1 + 0.45 * (1 + np.cos(np.pi * t / STEPS))
        for k in theta:
            buffer[k] = g[k] if t == 0 else MOMENTUM * buffer[k] + g[k]
            theta[k] = theta[k] - eta * (ALPHA * buffer[k] + DECAY * theta[k])
            history[k].append(theta[k].copy())
    return {k: np.stack(v) for k, v in history.items()}


def test_paper_form_matches_its_formula():
    tx = gc.sgdw(ALPHA, MOMENTUM, weight_decay=DECAY, multiplier=multiplier)
    actual, _ = trajectory(tx, jnp.float64, STEPS)
    assert max_relative_error(actual, numpy_sgdw(STEPS)) <= 1e-10


def test_decoupled_decay_differs_from_l2():
    decoupled, _ = trajectory(gc.sgdw(ALPHA, MOMENTUM, weight_decay=DECAY), jnp.float64, 50)
    l2, _ = trajectory(gc.sgd(ALPHA, MOMENTUM, weight_decay=DECAY), jnp.float64, 50)
    assert max_relative_error(decoupled, l2) > 1e-3
