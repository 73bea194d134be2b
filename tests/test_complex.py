"""Complex params: Optax's conventions, the state's dtypes, and the functions that refuse them.

The complex registry rows (``registry.complex_params``) check the aliases Optax runs on complex
params against Optax (``test_optax_parity.py``) and under jit, vmap and grad
(``test_transforms.py``); ``test_checkpoint.py`` round-trips a complex state. Here:

- the optimizers and options without a complex Optax reference, by two properties that Optax's convention
  (second moments of ``|g|²``, norms of ``|x|``) implies and that a wrong rule breaks: rotating
  each entry of the params and gradients by a phase rotates the updates by the same phase (``g²``
  for ``|g|²`` rotates by twice the phase; per-component moments, PyTorch's ``view_as_real``
  convention, depend on the phase), and params with a zero imaginary part give the real run;
- Adadelta against a NumPy transcription of its complex form, the clipping primitives against
  Optax on complex trees;
- dtypes: complex first moments, real second moments, the dtype options, ``state_bytes``,
  ``describe_state``, state dtypes unchanged by an update;
- the refusals: each names the function and says why; integer leaves keep an integer hint.
"""

import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
from problems import initial_params, loss, trajectory

RNG = np.random.default_rng(7)
SHAPES = {"w": (3, 4), "b": (4,)}


def _complex(shape):
    return RNG.normal(size=shape) + 1j * RNG.normal(size=shape)


PARAMS = {k: jnp.asarray(_complex(s)) for k, s in SHAPES.items()}
GRADS = [{k: jnp.asarray(_complex(s)) for k, s in SHAPES.items()} for _ in range(3)]
PHASES = {k: jnp.exp(1j * jnp.asarray(RNG.uniform(0, 2 * np.pi, s))) for k, s in SHAPES.items()}

# The optimizers and options Optax has no complex reference for (the aliases it has are checked
# against it by the registry's complex rows, the norm-based primitives below): one per set of
# primitives; AMSBound holds max_v, MultiSteps the gradient-accumulation wrappers.
SUPPORTED = {
    "sgd(nesterov, l2)": lambda: gc.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    "sgdw": lambda: gc.sgdw(0.1, 0.9, weight_decay=0.1),
    "rmsprop(centered, momentum, torch eps)": lambda: gc.rmsprop(
        0.01, centered=True, momentum=0.9, eps_in_sqrt=False),
    "adadelta": lambda: gc.adadelta(1.0, weight_decay=0.1),
    "radam(raw_v, threshold=4)": lambda: gc.radam(0.01, raw_v=True, threshold=4.0),
    "nadam(momentum_decay)": lambda: gc.nadam(0.01, momentum_decay=0.004),
    "adabound": lambda: gc.adabound(0.01),
    "amsbound": lambda: gc.amsbound(0.01, weight_decay=0.1),
    "swats": lambda: gc.swats(0.01, tolerance=1e9),
    "lookahead(adam)": lambda: gc.lookahead(gc.adam(0.01), 2, 0.5),
    "MultiSteps(adam)": lambda: gc.MultiSteps(gc.adam(0.01), 2, accumulator_dtype=None),
}


def _updates(tx, params, grads):
    state, out = tx.init(params), []
    for g in grads:
        u, state = tx.update(g, state, params)
        out.append(u)
    return out, state


@functools.lru_cache(maxsize=None)
def _runs(name):
    """The updates of ``SUPPORTED[name]`` on ``GRADS``: plain, with every entry rotated by its
    phase, with the imaginary parts dropped (float64) and zeroed (complex128). One compiled
    program per dtype, shared by the two property tests."""
    tx = SUPPORTED[name]()
    run = jax.jit(lambda params, grads: _updates(tx, params, grads)[0])
    real = [jax.tree.map(jnp.real, g) for g in (PARAMS, *GRADS)]
    zero_imag = jax.tree.map(lambda x: x.astype(jnp.complex128), real)
    return {"plain": run(PARAMS, GRADS),
            "rotated": run(_rotate(PARAMS), [_rotate(g) for g in GRADS]),
            "real": run(real[0], real[1:]),
            "zero_imag": run(zero_imag[0], zero_imag[1:])}


def _as(x, dtype):
    """``x`` in ``dtype``; its real part for a real dtype."""
    return (x if jnp.issubdtype(dtype, jnp.complexfloating) else x.real).astype(dtype)


def _assert_close(actual, expected, rtol):
    """Each leaf within ``rtol · max|expected|`` of ``expected`` (a relative error per leaf,
    so that an entry near zero is held to the leaf's scale)."""
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        a, e = np.asarray(a), np.asarray(e)
        assert np.max(np.abs(a - e)) <= rtol * np.max(np.abs(e)), np.max(np.abs(a - e))


def _rotate(tree):
    return jax.tree.map(lambda x, phase: x * phase, tree, PHASES)


@pytest.mark.parametrize("name", list(SUPPORTED))
def test_updates_rotate_with_the_phase_of_each_entry(name):
    """``u(Φg, Φθ) = Φ u(g, θ)`` for ``Φ`` a phase per entry (complex128, to 1e-12 of each
    leaf's scale)."""
    plain, rotated = _runs(name)["plain"], _runs(name)["rotated"]
    for u, r in zip(plain, rotated):
        _assert_close(r, _rotate(u), 1e-12)
    assert any(float(jnp.max(jnp.abs(u["w"].imag))) > 1e-3 for u in plain)


@pytest.mark.parametrize("name", list(SUPPORTED))
def test_real_valued_complex_params_give_the_real_run(name):
    """Complex128 params and gradients with a zero imaginary part: the updates are the float64
    run's (to 1e-14 of each leaf's scale) with a zero imaginary part."""
    for a, e in zip(_runs(name)["zero_imag"], _runs(name)["real"]):
        assert {x.dtype for x in jax.tree.leaves(a)} == {jnp.dtype(jnp.complex128)}
        _assert_close(jax.tree.map(jnp.real, a), e, 1e-14)
        chex.assert_trees_all_equal(jax.tree.map(jnp.imag, a), jax.tree.map(jnp.zeros_like, e))


@pytest.mark.parametrize("name", list(SUPPORTED))
@pytest.mark.parametrize("dtype", [jnp.complex64, jnp.complex128], ids=["complex64", "complex128"])
def test_state_dtypes_are_stable_and_updates_keep_the_params_dtype(name, dtype):
    """The state after an update has the structure and dtypes of ``init``'s (so it can be
    carried through ``lax.scan``/``cond``); per-leaf statistics are in the params' dtype or,
    for statistics of ``|g|²``, its real dtype; the updates are in the params' dtype."""
    tx = SUPPORTED[name]()
    params = jax.tree.map(lambda x: x.astype(dtype), PARAMS)
    grads = jax.tree.map(lambda x: x.astype(dtype), GRADS[0])
    state = jax.eval_shape(tx.init, params)
    updates, new_state = jax.eval_shape(tx.update, grads, state, params)
    assert jax.tree.map(lambda x: x.dtype, new_state) == jax.tree.map(lambda x: x.dtype, state)
    assert {u.dtype for u in jax.tree.leaves(updates)} == {jnp.dtype(dtype)}
    per_leaf = {x.dtype for x in jax.tree.leaves(state) if x.shape in SHAPES.values()}
    assert per_leaf <= {jnp.dtype(dtype), jnp.finfo(dtype).dtype, jnp.dtype(jnp.uint32)}


# The optimizers Optax has no complex reference for, at rates that make progress on the complex
# problem (its minimum is near 8.8, its start 20.6).
CONVERGENCE = {
    "adadelta": lambda: gc.adadelta(5.0),
    "amsbound": lambda: gc.amsbound(0.03),
    "swats": lambda: gc.swats(0.03, tolerance=1e9),
}


@pytest.mark.parametrize("name", list(CONVERGENCE))
def test_minimises_the_complex_problem(name):
    params, _ = trajectory(CONVERGENCE[name](), jnp.complex128, 200)
    final = loss({k: v[-1] for k, v in params.items()})
    start = loss(initial_params(jnp.complex128))
    assert final < 9.5 < start


def test_adadelta_equals_its_complex_formula():
    """``v = ρv + (1-ρ)|g|²``, ``Δ = √(u + ε)/√(v + ε) · g``, ``u = ρu + (1-ρ)|Δ|²``,
    ``θ -= γΔ``: a NumPy transcription, 20 open-loop steps (complex128, rtol 1e-13)."""
    lr, rho, eps = 1.0, 0.9, 1e-6
    grads = [_complex(SHAPES["w"]) for _ in range(20)]
    tx = gc.adadelta(lr, rho, eps)
    state = tx.init({"w": PARAMS["w"]})
    v = u = np.zeros(SHAPES["w"])
    for g in grads:
        updates, state = tx.update({"w": jnp.asarray(g)}, state, {"w": PARAMS["w"]})
        v = rho * v + (1 - rho) * np.abs(g) ** 2
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * np.abs(delta) ** 2
        np.testing.assert_allclose(np.asarray(updates["w"]), -lr * delta, rtol=1e-13)


CLIPPING = [
    (lambda: gc.clip_by_global_norm(1.0), lambda: optax.clip_by_global_norm(1.0)),
    (lambda: gc.clip_by_block_rms(0.5), lambda: optax.clip_by_block_rms(0.5)),
    (lambda: gc.adaptive_grad_clip(0.1), lambda: optax.adaptive_grad_clip(0.1)),
    (lambda: gc.scale_by_trust_ratio(trust_coefficient=0.01),
     lambda: optax.scale_by_trust_ratio(trust_coefficient=0.01)),
]


@pytest.mark.parametrize("ours, theirs", CLIPPING, ids=["global_norm", "block_rms",
                                                         "adaptive", "trust_ratio"])
@pytest.mark.parametrize("dtype", [jnp.complex64, jnp.complex128], ids=["complex64", "complex128"])
def test_norms_of_complex_leaves_match_optax(ours, theirs, dtype):
    """Norms take ``|x|``: one update of each norm-based primitive equals Optax's on a complex
    tree that it clips (rtol: a few units of the dtype's precision)."""
    params = jax.tree.map(lambda x: x.astype(dtype), PARAMS)
    grads = jax.tree.map(lambda x: (3 * x).astype(dtype), GRADS[0])

    @jax.jit
    def both(params, grads):
        return [tx.update(grads, tx.init(params), params)[0] for tx in (ours(), theirs())]

    actual, expected = both(params, grads)
    assert not np.allclose(actual["w"], grads["w"])
    chex.assert_trees_all_close(actual, expected, rtol=8 * float(jnp.finfo(dtype).eps))
    assert jax.tree.map(lambda x: x.dtype, actual) == jax.tree.map(lambda x: x.dtype, grads)


def test_global_norm_is_the_norm_of_the_moduli():
    expected = np.sqrt(sum(np.sum(np.abs(np.asarray(x)) ** 2) for x in PARAMS.values()))
    np.testing.assert_allclose(gc.global_norm(PARAMS), expected, rtol=1e-14)
    np.testing.assert_allclose(gc.global_norm(PARAMS), optax.tree.norm(PARAMS), rtol=1e-14)
    assert gc.global_norm(PARAMS).dtype == jnp.float64


def test_square_is_the_squared_modulus_and_real():
    squares = gc.square().update(PARAMS, gc.EmptyState())[0]
    for key, x in PARAMS.items():
        assert squares[key].dtype == jnp.float64
        np.testing.assert_allclose(squares[key], np.abs(np.asarray(x)) ** 2, rtol=1e-14)
    single = gc.square(dtype=jnp.float32).update(PARAMS, gc.EmptyState())[0]
    assert {x.dtype for x in jax.tree.leaves(single)} == {jnp.dtype(jnp.float32)}


def _stats(state, cls, field):
    return [getattr(s, field) for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, cls))
            if isinstance(s, cls)]


def _by_moment(state):
    """``{"b1": first-moment leaves, "b2": second-moment leaves}`` of an Adam state."""
    found = {}
    for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, gc.EmaState)):
        if isinstance(s, gc.EmaState):
            found[next(k for k in s.hyperparams if k != "_given")] = s.ema
    return found


def test_adam_keeps_a_complex_first_moment_and_a_real_second_moment():
    """complex64 params: m complex64, v float32, 4 bytes per parameter more than float32
    params (Optax keeps v complex: 8 more); ``describe_state`` shows both."""
    params64 = jax.tree.map(lambda x: x.astype(jnp.complex64), PARAMS)
    params32 = jax.tree.map(lambda x: x.real.astype(jnp.float32), PARAMS)
    tx = gc.adam(0.01)
    state = tx.init(params64)
    moments = _by_moment(state)
    assert {x.dtype for x in jax.tree.leaves(moments["b1"])} == {jnp.dtype(jnp.complex64)}
    assert {x.dtype for x in jax.tree.leaves(moments["b2"])} == {jnp.dtype(jnp.float32)}
    size = sum(x.size for x in jax.tree.leaves(PARAMS))
    assert gc.state_bytes(state) - gc.state_bytes(tx.init(params32)) == 4 * size
    assert (gc.state_bytes(optax.adam(0.01).init(params64))
            - gc.state_bytes(optax.adam(0.01).init(params32))) == 8 * size
    text = gc.describe_state(state)
    assert "complex64[3, 4]" in text and "float32[3, 4]" in text


OPTIONS = [
    # (alias, option values, params dtype, expected first-moment dtype, second-moment dtype)
    (gc.adam, {"mu_dtype": jnp.float32}, jnp.complex128, jnp.complex64, jnp.float64),
    (gc.adam, {"mu_dtype": jnp.complex128, "nu_dtype": jnp.complex128}, jnp.complex64,
     jnp.complex128, jnp.float64),
    (gc.adam, {"mu_dtype": jnp.complex64}, jnp.float64, jnp.float32, jnp.float64),
    (gc.nadam, {"mu_dtype": jnp.float32, "nu_dtype": jnp.complex64}, jnp.complex128,
     jnp.complex64, jnp.float32),
]


@pytest.mark.parametrize("alias, options, dtype, mu, nu", OPTIONS,
                         ids=[f"{a.__name__}-{jnp.dtype(d)}-{o}" for a, o, d, _, _ in OPTIONS])
def test_moment_dtype_options_set_the_precision(alias, options, dtype, mu, nu):
    """A dtype option sets a statistic's precision; its kind follows the statistic (complex
    first moments of complex params, real second moments), so no imaginary part is lost: the
    first step is ``-γ c g/|g|`` (``m̂ = g``, ``v̂ = |g|²``; NAdam's look-ahead gives
    ``c = 1 + β1/(1 + β1)``, Adam ``c = 1``) in the params' dtype."""
    lr, b1 = 0.01, 0.9
    params, grads = (jax.tree.map(lambda x: _as(x, dtype), tree) for tree in (PARAMS, GRADS[0]))
    tx = alias(lr, b1=b1, **options)
    updates, state = jax.jit(lambda p, g: tx.update(g, tx.init(p), p))(params, grads)
    first = (_stats(state, gc.NesterovMomentState, "ema") if alias is gc.nadam
             else _by_moment(state)["b1"])
    assert {x.dtype for x in jax.tree.leaves(first)} == {jnp.dtype(mu)}
    assert {x.dtype for x in jax.tree.leaves(_by_moment(state)["b2"])} == {jnp.dtype(nu)}
    assert {x.dtype for x in jax.tree.leaves(updates)} == {jnp.dtype(dtype)}
    c = 1 + b1 / (1 + b1) if alias is gc.nadam else 1.0
    expected = jax.tree.map(lambda g: -lr * c * g / (jnp.abs(g) + 1e-8), grads)
    _assert_close(updates, expected, 1e-6)


def test_accumulator_dtypes_keep_complex_buffers_complex():
    """``accumulator_dtype`` and ``MultiSteps``' float32 default give complex buffers the
    precision asked for."""
    params = jax.tree.map(lambda x: x.astype(jnp.complex128), PARAMS)
    sgd = gc.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.float32).init(params)
    assert {x.dtype for x in jax.tree.leaves(_stats(sgd, gc.MomentumState, "buffer"))} == {
        jnp.dtype(jnp.complex64)}
    steps = gc.MultiSteps(gc.sgd(0.1), 2).init(params)
    assert {x.dtype for x in jax.tree.leaves(steps.acc_grads)} == {jnp.dtype(jnp.complex64)}


COMPLEX64 = {"w": jnp.ones(2, jnp.complex64)}

REFUSED = [
    ("clip", lambda: gc.clip(1.0), "clipping by value compares values"),
    ("max_v", lambda: gc.max_v(), "a maximum compares values"),
    ("clip_lr", lambda: gc.clip_lr(), "clipping compares values"),
    ("rectified_step_size", lambda: gc.rectified_step_size(), "its input is a second moment"),
    ("ema", lambda: gc.ema(0.9, real=True), "with real=True it keeps a real statistic"),
    ("accumulate", lambda: gc.accumulate(real=True), "with real=True it keeps a real sum"),
    ("add_gradient_noise", lambda: gc.add_gradient_noise(key=0), "no reference convention"),
    ("add_gradient_noise", lambda: gc.noisy_sgd(0.1, key=0), "no reference convention"),
    # A hand-built second moment kept complex (no real=True) reaches max_v complex.
    ("max_v", lambda: gc.chain(gc.square(), gc.ema(0.999), gc.max_v()), r"ema\(\.\.\., real=True\)"),
]


@pytest.mark.parametrize("owner, build, reason", REFUSED, ids=[r[0] for r in REFUSED])
def test_functions_without_a_complex_form_refuse_complex_leaves(owner, build, reason):
    """The error names the function, the leaf and its dtype, and says why."""
    message = (re.escape(f"{owner}: ") + r"(params|updates)"
               + re.escape(" leaf at w has dtype complex64; ") + f".*{reason}")
    tx = build()
    with pytest.raises(TypeError, match=message):
        tx.update(COMPLEX64, tx.init(COMPLEX64), COMPLEX64)


def test_complex_statistic_cannot_be_kept_in_a_precision_without_complex_dtype():
    with pytest.raises(TypeError, match=re.escape(
            "ema: dtype=bfloat16 cannot hold the complex values of params leaf at w")):
        gc.adam(0.1, mu_dtype=jnp.bfloat16).init(COMPLEX64)
    with pytest.raises(TypeError, match=re.escape("square: dtype=float16 cannot hold")):
        gc.square(dtype=jnp.float16).update(COMPLEX64, gc.EmptyState())


def test_integer_leaves_stay_refused_with_an_integer_hint():
    params = {"w": jnp.ones(2, jnp.complex64), "steps": jnp.arange(3)}
    with pytest.raises(TypeError, match=re.escape("params leaf at steps has dtype int64")
                       + r".*integer or boolean leaf.*freeze_where"):
        gc.adam(0.1).init(params)
    with pytest.raises(TypeError, match=r"dtype=int32 is not a floating-point dtype"):
        gc.adam(0.1, mu_dtype=jnp.int32)
