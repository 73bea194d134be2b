"""A reference problem with matrix-shaped params, for the matrix-wise optimizers (Adafactor's
factored statistics, Muon's orthogonalized steps).

The shared problem of ``tests/problems.py`` has only vector leaves, on which Adafactor keeps
unfactored statistics and Muon hands every leaf to Adam. This one has a matrix ``w`` (6×4), a
vector ``b`` (4) and a 3-D leaf ``k`` (2×3×5): a linear regression with log-cosh residuals and a
quartic penalty on ``w``, convex, so rounding differences between implementations shrink instead
of growing. ``loss`` works with ``jax.numpy`` and with ``torch`` (the golden generator
``tests/golden/make_torch_golden_matrix.py`` evaluates the very same loss).

``trajectory`` has the contract of ``problems.trajectory`` but returns each leaf flattened,
``(steps, size)``, so that ``problems.max_relative_error`` normalises by the whole leaf.
"""

import numpy as np

import jax
import jax.numpy as jnp

import gradchain as gc

INITIAL = {"w": np.cos(np.arange(24.0) * 0.9).reshape(6, 4),
           "b": np.array([0.5, -0.8, 0.3, 1.1]),
           "k": np.sin(np.arange(30.0) * 0.7 + 0.4).reshape(2, 3, 5)}
DATA_X = np.sin(np.arange(48.0) * 1.7).reshape(8, 6)
DATA_Z = np.cos(np.arange(24.0) * 1.1 + 0.2).reshape(8, 3)
# Targets a model close to the start can reach (up to a small misfit), so the loss falls well.
TARGET_Y = (DATA_X @ np.cos(np.arange(24.0) * 0.4 + 1.0).reshape(6, 4) - 0.3
            + 0.1 * np.sin(np.arange(32.0)).reshape(8, 4))
TARGET_Q = (np.einsum("bi,nij->bnj", DATA_Z, np.cos(np.arange(30.0) * 0.5).reshape(2, 3, 5))
            + 0.1 * np.cos(np.arange(80.0) * 2.1).reshape(8, 2, 5))


def loss(params, xp=jnp):
    """``Σ log cosh(X w + b - Y) + Σ log cosh(Z·k - Q) + 0.05 Σ w⁴``; ``xp`` is ``jax.numpy``
    or ``torch``."""
    w, b, k = params["w"], params["b"], params["k"]
    x, y, z, q = (xp.asarray(a, dtype=w.dtype) for a in (DATA_X, TARGET_Y, DATA_Z, TARGET_Q))
    residual = x @ w + b - y
    residual_k = xp.einsum("bi,nij->bnj", z, k) - q
    return (xp.sum(xp.log(xp.cosh(residual))) + xp.sum(xp.log(xp.cosh(residual_k)))
            + 0.05 * xp.sum(w ** 4))


def initial_params(dtype):
    return {name: jnp.asarray(value, dtype) for name, value in INITIAL.items()}


def trajectory(tx, dtype, steps=200, grads=None):
    """``steps`` updates of ``tx`` from ``initial_params(dtype)``: closed loop (``grads=None``)
    or fed ``grads[t]`` (a dict of ``(steps, size)`` arrays) at step ``t``. Returns
    ``(params, grads)``, dicts of ``(steps, size)`` arrays."""
    params = initial_params(dtype)
    shapes = {name: leaf.shape for name, leaf in params.items()}

    def step(carry, g_in):
        p, s = carry
        g = (jax.grad(loss)(p) if g_in is None
             else {name: g_in[name].reshape(shapes[name]) for name in g_in})
        u, s = tx.update(g, s, p)
        p = gc.apply_updates(p, u)
        flat = lambda tree: {name: leaf.reshape(-1) for name, leaf in tree.items()}
        return (p, s), (flat(p), flat(g))

    xs = None if grads is None else {k: jnp.asarray(v, dtype) for k, v in grads.items()}
    run = jax.jit(lambda p, s, xs: jax.lax.scan(step, (p, s), xs, length=steps)[1])
    return run(params, tx.init(params), xs)
