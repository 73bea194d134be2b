"""Reference problems shared by the parity tests and the golden-trajectory generator.

``rosenbrock_like`` is small and non-quadratic, with two leaves of different shapes so that
per-leaf bookkeeping is exercised. The same formula is written in NumPy-compatible form, so the
torch generator (``tests/golden/make_torch_golden.py``) can evaluate it with torch tensors.
"""

import numpy as np

import jax
import jax.numpy as jnp

import gradchain as gc

INITIAL = {"w": np.linspace(-1.5, 1.2, 6), "b": np.array([0.7, -0.4, 1.3])}


def loss(params, xp=jnp):
    """A smooth non-quadratic loss; ``xp`` is ``jax.numpy`` or ``torch``."""
    w, b = params["w"], params["b"]
    rosen = xp.sum(100.0 * (w[1:] - w[:-1] ** 2) ** 2 + (1.0 - w[:-1]) ** 2)
    return 0.01 * rosen + xp.sum(xp.log(1.0 + b ** 2)) + xp.sum(xp.sin(w[:3]) * b)


def initial_params(dtype):
    return {k: jnp.asarray(v, dtype) for k, v in INITIAL.items()}


def trajectory(tx, dtype, steps=200):
    """Params after each of ``steps`` updates of ``tx`` on ``loss``: a dict of (steps, n) arrays.

    One ``lax.scan`` compiles the whole run once.
    """
    params = initial_params(dtype)

    def step(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        p = gc.apply_updates(p, u)
        return (p, s), p

    _, path = jax.jit(lambda p, s: jax.lax.scan(step, (p, s), None, length=steps))(
        params, tx.init(params))
    return path


def max_relative_error(actual, expected):
    """Largest |a - e| / max(|e|, 1e-12) over all leaves and steps."""
    worst = 0.0
    for key in expected:
        a = np.asarray(actual[key], np.float64)
        e = np.asarray(expected[key], np.float64)
        worst = max(worst, float(np.max(np.abs(a - e) / np.maximum(np.abs(e), 1e-12))))
    return worst
