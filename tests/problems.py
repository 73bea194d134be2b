"""Reference problems shared by the parity tests and the golden-trajectory generator.

``loss`` is a small, smooth, non-quadratic regression (log-cosh residuals plus a quartic
penalty) over two leaves of different shapes, so per-leaf bookkeeping is exercised. It is convex,
so rounding differences between implementations shrink instead of growing chaotically, and the
comparison measures the optimizers, not the problem's sensitivity. The formula works with
``jax.numpy`` and with ``torch``, so the golden-trajectory generator
(``tests/golden/make_torch_golden.py``) evaluates the very same loss.

Complex params (``initial_params(jnp.complex128)``) get the complex version of the problem: the
same leaves with complex data and a pseudo-Huber loss of the complex residuals, also convex and
non-quadratic. Optimizers are fed ``gradient(params)``: ``jax.grad`` for real params, its
conjugate for complex ones (the gradient with respect to ``(Re z, Im z)`` written as one complex
number, what Optax's tests feed its optimizers; ``jax.grad`` alone would ascend in ``Im z``).
"""

import numpy as np

import jax
import jax.numpy as jnp

import gradchain as gc

INITIAL = {"w": np.linspace(-1.5, 1.2, 6), "b": np.array([0.7, -0.4, 1.3])}
DATA_W = np.sin(np.arange(48.0)).reshape(8, 6)
DATA_B = np.cos(np.arange(24.0) * 0.7).reshape(8, 3)
TARGET = np.linspace(-2.0, 3.0, 8)
INITIAL_IMAG = {"w": np.linspace(0.8, -0.6, 6), "b": np.array([-0.3, 0.9, 0.2])}
DATA_W_IMAG = np.cos(np.arange(48.0) * 1.3).reshape(8, 6)
DATA_B_IMAG = np.sin(np.arange(24.0) * 0.4 + 1.0).reshape(8, 3)
TARGET_IMAG = np.linspace(1.5, -1.0, 8)


def loss(params, xp=jnp):
    """``Σ log cosh(A w + B b - y) + 0.05 Σ w⁴``; ``xp`` is ``jax.numpy`` or ``torch``.

    Complex params: ``Σ √(1 + |A w + B b - y|²) + 0.05 Σ |w|⁴`` with complex ``A``, ``B``,
    ``y`` (``jax.numpy`` only).
    """
    w, b = params["w"], params["b"]
    if xp is jnp and jnp.iscomplexobj(w):
        return _complex_loss(w, b)
    a, bb, y = (xp.asarray(DATA_W, dtype=w.dtype), xp.asarray(DATA_B, dtype=w.dtype),
                xp.asarray(TARGET, dtype=w.dtype))
    residual = a @ w + bb @ b - y
    return xp.sum(xp.log(xp.cosh(residual))) + 0.05 * xp.sum(w ** 4)


def _complex_loss(w, b):
    a = jnp.asarray(DATA_W + 1j * DATA_W_IMAG, w.dtype)
    bb = jnp.asarray(DATA_B + 1j * DATA_B_IMAG, w.dtype)
    y = jnp.asarray(TARGET + 1j * TARGET_IMAG, w.dtype)
    residual = a @ w + bb @ b - y
    return (jnp.sum(jnp.sqrt(1 + _modulus_squared(residual)))
            + 0.05 * jnp.sum(jnp.square(_modulus_squared(w))))


def _modulus_squared(z):
    return jnp.square(z.real) + jnp.square(z.imag)


def initial_params(dtype):
    """The starting point in ``dtype``; complex dtypes get an imaginary part too."""
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return {k: jnp.asarray(v + 1j * INITIAL_IMAG[k], dtype) for k, v in INITIAL.items()}
    return {k: jnp.asarray(v, dtype) for k, v in INITIAL.items()}


def gradient(params):
    """What the optimizers are fed: ``jax.grad(loss)``, conjugated for complex params."""
    return jax.tree.map(jnp.conj, jax.grad(loss)(params))


def trajectory(tx, dtype, steps=200, grads=None):
    """Run ``tx`` for ``steps`` updates from ``initial_params(dtype)``.

    Closed loop (``grads=None``): each gradient is ``gradient`` at the current params.
    Open loop (``grads`` a dict of ``(steps, n)`` arrays, e.g. a reference's recorded gradients):
    step ``t`` uses ``grads[t]``, so an optimizer is compared with a reference step for step on
    identical inputs, and rounding differences cannot feed back through the loss. Float32
    comparisons use the open loop.

    Returns ``(params, grads)``: dicts of ``(steps, n)`` arrays, the params after each update and
    the gradient each update used. One ``lax.scan`` compiles the whole run once.
    """
    params = initial_params(dtype)

    def step(carry, g_in):
        p, s = carry
        g = gradient(p) if g_in is None else g_in
        u, s = tx.update(g, s, p)
        p = gc.apply_updates(p, u)
        return (p, s), (p, g)

    xs = None if grads is None else {k: jnp.asarray(v, dtype) for k, v in grads.items()}
    run = jax.jit(lambda p, s, xs: jax.lax.scan(step, (p, s), xs, length=steps)[1])
    return run(params, tx.init(params), xs)


def max_relative_error(actual, expected):
    """Largest ``max|a - e| / max|e|`` over leaves and steps (each step's leaf as a vector).

    Normalising by the leaf's largest entry, not entry by entry, keeps a parameter that passes
    through zero from turning a rounding difference into a huge "relative" error.
    """
    worst = 0.0
    for key in expected:
        a, e = (np.asarray(x[key]) for x in (actual, expected))
        a, e = (x.astype(np.result_type(x.dtype, np.float64)) for x in (a, e))
        scale = np.maximum(np.max(np.abs(e), axis=-1), 1e-30)
        worst = max(worst, float(np.max(np.max(np.abs(a - e), axis=-1) / scale)))
    return worst
