"""SOAP and Shampoo against NumPy transcriptions of the papers' algorithms, and the matrix
primitives they are made of (``gradchain/kronecker/``).

The transcriptions below are written from the papers (Gupta et al. 2018, Algorithm 1 and its
tensor form; Vyas et al. 2024, Algorithms 3 and 4) and the authors' code, with plain matrices
``L``, ``R`` per leaf (a vector is a column: ``L`` only), NumPy's ``eigh`` and ``qr`` and SciPy's
``fractional_matrix_power`` (a Schur-Padé method, not an eigendecomposition). They run in float64
on a few steps of fixed random gradients (open loop) over three leaves: a matrix whose factors
are both used, a matrix with one axis over ``max_precond_dim`` (that axis gets none), and a
vector (no factor, or a full one with ``precondition_1d``). SOAP's eigenbases are unique up to
the sign of each vector as long as no eigenvalue repeats, and SOAP's step does not depend on
those signs; the gradients here are chosen so that the first bases, made from one gradient,
leave at most one null direction per factor.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import gradchain as gc
from gradchain.kronecker.eigenbasis import eigenbasis, refresh_eigenbasis
from gradchain.kronecker.roots import inverse_root

STEPS = 7
SHAPES = {"w": (4, 3), "v": (5, 12), "b": (3,)}
MAX_DIM = 8


def gradients(shapes, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    return [{k: rng.normal(size=s) for k, s in shapes.items()} for _ in range(steps)]


def layout(g, max_dim, precondition_1d):
    """The leaf as a matrix (a vector as a column) and which of its factors are used."""
    matrix = g.reshape(-1, 1) if g.ndim == 1 else g
    use_l = (g.ndim == 2 or precondition_1d) and matrix.shape[0] <= max_dim
    use_r = g.ndim == 2 and matrix.shape[1] <= max_dim
    return matrix, use_l, use_r


def soap_reference(grads, b1, b2, shampoo_beta, eps, frequency, max_dim, precondition_1d):
    """SOAP's direction at each step (before the learning rate), leaf by leaf."""
    states, outs = {}, []
    for t, step_grads in enumerate(grads, 1):
        out = {}
        for k, g in step_grads.items():
            G, use_l, use_r = layout(g, max_dim, precondition_1d)
            m, n = G.shape
            s = states.setdefault(k, dict(m=np.zeros_like(G), v=np.zeros_like(G),
                                          L=np.zeros((m, m)), R=np.zeros((n, n)),
                                          QL=np.eye(m), QR=np.eye(n)))
            if t == 1:  # the first gradient only builds L, R and their eigenbases
                s["L"] = (1 - shampoo_beta) * G @ G.T
                s["R"] = (1 - shampoo_beta) * G.T @ G
                if use_l:
                    s["QL"] = np.linalg.eigh(s["L"])[1][:, ::-1]
                if use_r:
                    s["QR"] = np.linalg.eigh(s["R"])[1][:, ::-1]
                out[k] = np.zeros_like(g)
                continue
            adam_step = t - 1
            QL, QR = s["QL"], s["QR"]
            s["m"] = b1 * s["m"] + (1 - b1) * G
            s["v"] = b2 * s["v"] + (1 - b2) * (QL.T @ G @ QR) ** 2
            N = QL @ ((QL.T @ s["m"] @ QR) / (np.sqrt(s["v"]) + eps)) @ QR.T
            out[k] = (np.sqrt(1 - b2 ** adam_step) / (1 - b1 ** adam_step) * N).reshape(g.shape)
            s["L"] = shampoo_beta * s["L"] + (1 - shampoo_beta) * G @ G.T
            s["R"] = shampoo_beta * s["R"] + (1 - shampoo_beta) * G.T @ G
            if adam_step % frequency == 0:  # Algorithm 4: sort, one power iteration, QR
                if use_l:
                    order = np.argsort(-np.diag(QL.T @ s["L"] @ QL), kind="stable")
                    s["v"] = s["v"][order, :]
                    s["QL"] = np.linalg.qr(s["L"] @ QL[:, order])[0]
                if use_r:
                    order = np.argsort(-np.diag(QR.T @ s["R"] @ QR), kind="stable")
                    s["v"] = s["v"][:, order]
                    s["QR"] = np.linalg.qr(s["R"] @ QR[:, order])[0]
        outs.append(out)
    return outs


def root(H, p, eps):
    """``(H + εI)^(-1/p)`` by SciPy's Schur-Padé fractional power."""
    return np.real(scipy.linalg.fractional_matrix_power(H + eps * np.eye(len(H)), -1.0 / p))


def shampoo_reference(grads, b2, eps, frequency, max_dim, precondition_1d, graft):
    """Shampoo's direction at each step: ``L^(-1/p) G R^(-1/p)``, ``p = 2 ×`` the number of
    factors, the roots recomputed at steps 1, 1 + f, ...; grafted to the norm of Adagrad's
    ``g / (√Σg² + 1e-10)`` per leaf, or that direction alone for a leaf with no factor."""
    states, outs = {}, []
    for t, step_grads in enumerate(grads, 1):
        out = {}
        for k, g in step_grads.items():
            G, use_l, use_r = layout(g, max_dim, precondition_1d)
            m, n = G.shape
            s = states.setdefault(k, dict(L=np.zeros((m, m)), R=np.zeros((n, n)),
                                          acc=np.zeros_like(G)))
            s["acc"] = s["acc"] + G ** 2
            adagrad = G / (np.sqrt(s["acc"]) + 1e-10)
            factors = use_l + use_r
            if not factors:
                out[k] = (adagrad if graft else G).reshape(g.shape)
                continue
            weight = 1.0 if b2 == 1 else 1 - b2
            s["L"] = b2 * s["L"] + weight * G @ G.T
            s["R"] = b2 * s["R"] + weight * G.T @ G
            if (t - 1) % frequency == 0:
                s["PL"] = root(s["L"], 2 * factors, eps) if use_l else np.eye(m)
                s["PR"] = root(s["R"], 2 * factors, eps) if use_r else np.eye(n)
            direction = s["PL"] @ G @ s["PR"]
            if graft:
                direction = direction * np.linalg.norm(adagrad) / np.linalg.norm(direction)
            out[k] = direction.reshape(g.shape)
        outs.append(out)
    return outs


@functools.lru_cache(maxsize=None)
def jitted_update(tx):
    """One compiled ``update`` per transformation (equal transformations are one key)."""
    return jax.jit(tx.update)


def run_open_loop(tx, grads, params=None):
    """The updates of ``tx`` on ``grads`` (a list of dicts), one jitted update."""
    state = tx.init(jax.tree.map(jnp.zeros_like, grads[0]) if params is None else params)
    update = jitted_update(tx)
    outs = []
    for g in grads:
        u, state = update(jax.tree.map(jnp.asarray, g), state, params)
        outs.append(u)
    return outs, state


def assert_updates_close(actual, expected, rtol=1e-10):
    for step, (a, e) in enumerate(zip(actual, expected)):
        for k in e:
            scale = max(np.max(np.abs(e[k])), 1e-300)
            err = np.max(np.abs(np.asarray(a[k]) - e[k])) / scale
            assert err < rtol, (step, k, err)


SOAP_CASES = {
    "vector-as-adam": dict(precondition_1d=False, shapes=SHAPES),
    "vector-preconditioned": dict(precondition_1d=True, shapes={**SHAPES, "b": (2,)}),
}


@pytest.mark.parametrize("case", sorted(SOAP_CASES))
def test_scale_by_soap_matches_the_transcription(case):
    precondition_1d, shapes = SOAP_CASES[case]["precondition_1d"], SOAP_CASES[case]["shapes"]
    grads = gradients(shapes)
    hyper = dict(b1=0.9, b2=0.95, shampoo_beta=0.8, eps=1e-8)
    tx = gc.scale_by_soap(**hyper, precondition_frequency=2, max_precond_dim=MAX_DIM,
                          precondition_1d=precondition_1d)
    ours, state = run_open_loop(tx, grads)
    expected = soap_reference(grads, **hyper, frequency=2, max_dim=MAX_DIM,
                              precondition_1d=precondition_1d)
    assert_updates_close(ours, expected)
    assert np.all(np.asarray(ours[0]["w"]) == 0)
    factors = state.soap["v"].factors
    assert factors[0].shape == (5, 5) and factors[1] is None  # 12 > max_precond_dim
    assert (state.soap["b"].factors[0] is None) != precondition_1d


SHAMPOO_CASES = [
    pytest.param(dict(b2=1.0, graft="adagrad", precondition_1d=True), id="sums-adagrad-graft"),
    pytest.param(dict(b2=0.9, graft="adagrad", precondition_1d=False), id="ema-vector-grafted"),
    pytest.param(dict(b2=1.0, graft=None, precondition_1d=False), id="paper-no-graft"),
]


@pytest.mark.parametrize("options", SHAMPOO_CASES)
def test_scale_by_shampoo_matches_the_transcription(options):
    grads = gradients(SHAPES, seed=1)
    tx = gc.scale_by_shampoo(options["b2"], 1e-3, precondition_frequency=2,
                             max_precond_dim=MAX_DIM, precondition_1d=options["precondition_1d"],
                             graft=options["graft"])
    ours, _ = run_open_loop(tx, grads)
    expected = shampoo_reference(grads, options["b2"], 1e-3, 2, MAX_DIM,
                                 options["precondition_1d"], options["graft"] is not None)
    assert_updates_close(ours, expected)


def alias_reference(directions, grads, params, learning_rate, weight_decay, momentum=None):
    """The params after each step: ``u = d + λθ`` (through ``b ← μ b + u`` with a momentum),
    ``θ -= γ u``."""
    params, buffer, trail = dict(params), None, []
    for d in directions:
        u = {k: d[k] + weight_decay * params[k] for k in d}
        if momentum is not None:
            buffer = u if buffer is None else {k: momentum * buffer[k] + u[k] for k in u}
            u = buffer
        params = {k: params[k] - learning_rate * u[k] for k in u}
        trail.append(params)
    return trail


def run_alias(tx, grads, params):
    state = tx.init(params)
    update = jax.jit(tx.update)
    trail = []
    for g in grads:
        u, state = update(jax.tree.map(jnp.asarray, g), state, params)
        params = gc.apply_updates(params, u)
        trail.append(params)
    return trail


def test_soap_alias_adds_decoupled_decay_and_the_rate():
    grads = gradients(SHAPES, steps=4, seed=2)
    params = {k: jnp.asarray(v) for k, v in gradients(SHAPES, steps=1, seed=3)[0].items()}
    tx = gc.soap(0.1, weight_decay=0.05, precondition_frequency=2, max_precond_dim=MAX_DIM)
    directions = soap_reference(grads, 0.95, 0.95, 0.95, 1e-8, 2, MAX_DIM, False)
    expected = alias_reference(directions, grads, params, 0.1, 0.05)
    assert_updates_close(run_alias(tx, grads, params), expected)


def test_shampoo_alias_puts_decay_and_direction_through_the_momentum():
    grads = gradients(SHAPES, steps=4, seed=4)
    params = {k: jnp.asarray(v) for k, v in gradients(SHAPES, steps=1, seed=5)[0].items()}
    tx = gc.shampoo(0.1, momentum=0.5, b2=1.0, eps=1e-3, weight_decay=0.05,
                    max_precond_dim=MAX_DIM)
    directions = shampoo_reference(grads, 1.0, 1e-3, 1, MAX_DIM, False, True)
    expected = alias_reference(directions, grads, params, 0.1, 0.05, momentum=0.5)
    assert_updates_close(run_alias(tx, grads, params), expected)


def test_inverse_root_and_its_derivative_where_eigenvalues_repeat():
    """``(g gᵀ + εI)^(-1/4)`` of a rank-one statistic (three equal eigenvalues) against SciPy,
    and its derivative along ``g + t x`` against a central difference (``eigh``'s own
    derivative is infinite there)."""
    rng = np.random.default_rng(6)
    g, x, weights = (jnp.asarray(rng.normal(size=s)) for s in (4, 4, (4, 4)))

    def f(t):
        v = g + t * x
        return jnp.sum(weights * inverse_root(jnp.outer(v, v), 1e-2, 4))

    np.testing.assert_allclose(inverse_root(jnp.outer(g, g), 1e-2, 4),
                               root(np.outer(g, g), 4, 1e-2), rtol=1e-12, atol=1e-12)
    h = 1e-5
    value_and_grad = jax.jit(jax.value_and_grad(f))
    np.testing.assert_allclose(value_and_grad(0.0)[1],
                               (value_and_grad(h)[0] - value_and_grad(-h)[0]) / (2 * h),
                               rtol=1e-7)
    d_eps = jax.grad(lambda e: jnp.sum(inverse_root(jnp.outer(g, g), e, 4)))(1e-2)
    assert np.isfinite(d_eps) and d_eps < 0


def test_eigenbasis_refresh_sorts_by_estimated_eigenvalue():
    rng = np.random.default_rng(7)
    a = rng.normal(size=(5, 5))
    h = jnp.asarray(a @ a.T)
    basis = eigenbasis(h)
    assert np.all(np.diff(np.diag(basis.T @ h @ basis)) < 0)
    shuffled = basis[:, ::-1]
    refreshed, order = refresh_eigenbasis(h, shuffled)
    np.testing.assert_array_equal(order, [4, 3, 2, 1, 0])
    # One power-iteration step from the exact eigenvectors keeps them (up to signs).
    np.testing.assert_allclose(np.abs(refreshed), np.abs(basis), atol=1e-10)


MATRIX = {"w": np.linspace(-1.0, 1.0, 12).reshape(4, 3), "b": np.array([0.3, -0.2, 0.1])}
DATA = np.cos(np.arange(20.0)).reshape(5, 4)


def matrix_loss(params):
    residual = jnp.asarray(DATA) @ params["w"] + params["b"] - 1.0
    return jnp.sum(jnp.log(jnp.cosh(residual))) + 0.05 * jnp.sum(params["w"] ** 4)


def matrix_run(make, learning_rate, params):
    """Closed-loop steps on a problem with a 4 × 3 matrix leaf; the final loss."""
    tx = make(learning_rate)

    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(matrix_loss)(p), s, p)
        return (gc.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), length=5)
    return matrix_loss(params)


matrix_value_and_grad = jax.jit(jax.value_and_grad(matrix_run, argnums=1), static_argnums=0)


def soap_on_matrices(learning_rate):
    return gc.soap(learning_rate, precondition_frequency=2)


def shampoo_on_matrices(learning_rate):
    return gc.shampoo(learning_rate, eps=1e-2, precondition_frequency=2)


@pytest.mark.parametrize("make", [soap_on_matrices, shampoo_on_matrices])
def test_matrix_leaves_under_grad(make):
    """Through eigh, QR (SOAP's refresh at steps 3 and 5) and the roots: d loss / d γ by
    ``jax.grad`` equals a central difference."""
    params = jax.tree.map(jnp.asarray, MATRIX)
    rate, h = jnp.asarray(0.05), 1e-6
    _, derivative = matrix_value_and_grad(make, rate, params)
    up, down = (matrix_value_and_grad(make, r, params)[0] for r in (rate + h, rate - h))
    difference = (up - down) / (2 * h)
    assert abs(float(difference)) > 1e-2
    np.testing.assert_allclose(derivative, difference, rtol=1e-6)


def test_soap_bases_under_vmap():
    """A ``vmap`` over two rates (batched eigh, QR and sorting) equals the two runs."""
    params = jax.tree.map(jnp.asarray, MATRIX)
    rates = jnp.array([0.05, 0.1])
    run = jax.jit(lambda r: matrix_run(soap_on_matrices, r, params))
    np.testing.assert_allclose(jax.jit(jax.vmap(run))(rates), [run(r) for r in rates],
                               rtol=1e-13)


@pytest.mark.parametrize("tx", [
    gc.scale_by_soap(precondition_frequency=1, precondition_1d=True),
    gc.scale_by_shampoo(1.0, 1e-2, precondition_1d=True)], ids=["soap", "shampoo"])
def test_complex_leaves_rotate_with_a_phase_and_reduce_to_the_real_run(tx):
    """``G Gᴴ`` is unchanged by a global phase, so the updates turn with the gradients; a
    complex run with zero imaginary parts is the real run."""
    grads = gradients({"w": (4, 3), "b": (2,)}, steps=3, seed=8)
    phase = np.exp(0.7j)
    real, _ = run_open_loop(tx, grads)
    as_complex, _ = run_open_loop(tx, [{k: v + 0j for k, v in g.items()} for g in grads])
    turned, _ = run_open_loop(tx, [{k: phase * v for k, v in g.items()} for g in grads])
    for r, c, t in zip(real, as_complex, turned):
        for k in r:
            np.testing.assert_allclose(c[k], r[k], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(t[k], phase * np.asarray(r[k]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("build, message", [
    (lambda: gc.soap(b2=1.0), "soap: b2=1.0 is out of range"),
    (lambda: gc.soap(shampoo_beta=-0.1), "soap: shampoo_beta=-0.1 is out of range"),
    (lambda: gc.soap(precondition_frequency=0), "soap: precondition_frequency=0 is out"),
    (lambda: gc.soap(max_precond_dim=0), "soap: max_precond_dim=0 is out of range"),
    (lambda: gc.shampoo(0.1, eps=0.0), "shampoo: eps=0.0 is out of range"),
    (lambda: gc.shampoo(0.1, b2=1.5), "shampoo: b2=1.5 is out of range"),
    (lambda: gc.shampoo(0.1, graft="adam"), "shampoo: graft='adam' is not one of"),
    (lambda: gc.shampoo(0.1, graft_eps=-1.0), "shampoo: graft_eps=-1.0 is out of range"),
    (lambda: gc.shampoo(0.1, momentum=None, nesterov=True), "shampoo: nesterov=True needs"),
])
def test_bad_arguments_are_refused_naming_them(build, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        build()


def test_pmap_with_averaged_gradients_equals_one_device():
    """Data-parallel SOAP and Shampoo (``test_distributed``'s problem: a 16 × 3 matrix and a
    vector, its batch on 2 devices, gradients averaged with ``pmean``) give the one-device
    numbers; each
    device holds the whole leaves, so the factors are exact. SOAP's 16-row axis is left out
    (``max_precond_dim=8``): a basis built from one gradient of rank 3 would be arbitrary in its
    13 null directions. Errors are relative to each leaf's largest entry: SOAP divides each
    rotated coordinate by its own root mean square, which turns the last-bit differences of
    ``pmean`` into ~1e-10 of the leaf (Shampoo's: 4e-15)."""
    from test_distributed import FEATURES, OUTPUTS, PARAMS, X, Y, make_step, run
    from registry import Config

    devices = 2

    for config in (Config("soap", lambda lr: gc.soap(lr, max_precond_dim=8,
                                                      precondition_frequency=2), learning_rate=0.03),
                   Config("shampoo", lambda lr: gc.shampoo(lr, eps=0.1, precondition_1d=True))):
        one = run(jax.jit(make_step(config)), PARAMS, config.gradchain().init(PARAMS), X, Y)
        replicate = functools.partial(
            jax.tree.map, lambda x: jnp.broadcast_to(x, (devices, *x.shape)))
        step = jax.pmap(make_step(config, axis_name="devices"), axis_name="devices",
                        devices=jax.devices()[:devices])
        many = run(step, replicate(PARAMS), replicate(config.gradchain().init(PARAMS)),
                   X.reshape(devices, -1, FEATURES), Y.reshape(devices, -1, OUTPUTS))
        for device in range(devices):
            assert_updates_close([jax.tree.map(lambda leaf: leaf[device], many[0])],
                                 [jax.tree.map(np.asarray, one[0])], rtol=1e-9)


def test_in_nnx_optimizer():
    """``nnx.Optimizer`` wraps the state's arrays in Variables: a leaf's statistics stay a
    NamedTuple of arrays (not a Variable holding one, which nnx turns into a ``State``), so the
    second update still finds its bases and roots."""
    from flax import nnx

    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    x = jnp.ones((4, 3))
    for tx in (gc.soap(0.1, precondition_frequency=1), gc.shampoo(0.1)):
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
        for _ in range(2):
            optimizer.update(model, nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model))
        assert np.all(np.isfinite(model.kernel[...]))
