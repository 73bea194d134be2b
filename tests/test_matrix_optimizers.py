"""Adafactor and Muon on matrices, and the state size of every optimizer of issue 11.

The registry rows (``tests/registry.py``) run on the shared problem's vectors, where Adafactor
keeps unfactored moments and Muon hands every leaf to Adam. Here, on ``tests/matrix_problem.py``
(a 6×4 matrix, a vector and a 2×3×5 stack):

- Optax parity: float64 closed loop within 1e-10 (measured: <= 3e-15), float32 open loop on
  Optax's recorded gradients within 1e-5 (measured: <= 6.1e-6, Muon's Newton-Schulz iteration in
  float32), for Adafactor's factored rows and columns (of a matrix and of a stack) and Muon with
  Optax's dimension numbers for a 3-D weight (as a tree and as a function), its other
  coefficients and preconditionings (``spectral`` aside: an SVD per step, slow to compile),
  ``adaptive`` and ``consistent_rms``;
- the state is never larger than Optax's (``gc.state_bytes``), per parameter, on a large tree;
  Adafactor's factored leaves hold rows + columns;
- ``vmap`` over learning rates equals separate runs, and ``jit`` equals eager steps;
- ``newton_schulz`` keeps the singular vectors and maps the singular values (those above 2% of
  the norm) into Muon's band around 1 (hypothesis), and
  ``ns_dtype=jnp.bfloat16`` runs it in bfloat16 (torch's Muon does), returning the updates' dtype.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradchain as gc
from matrix_problem import initial_params, loss, trajectory
from problems import max_relative_error

# Float32 Newton-Schulz iterations are compared at 1e-5, measured on XLA's optimized code
# (tests/conftest.py).
pytestmark = pytest.mark.optimized_xla

STEPS = 200
C = optax.contrib
DIMS = {"w": gc.MuonDimensionNumbers(), "b": None, "k": gc.MuonDimensionNumbers(1, 2)}
OPTAX_DIMS = {"w": C.MuonDimensionNumbers(), "b": None, "k": C.MuonDimensionNumbers(1, 2)}

# name -> (gradchain, Optax)
PAIRS = {
    "adafactor(factored)": (gc.adafactor(0.01, min_dim_size_to_factor=2),
                            optax.adafactor(0.01, min_dim_size_to_factor=2)),
    "adafactor(factored, momentum, decay, no clipping)": (
        gc.adafactor(0.01, min_dim_size_to_factor=2, momentum=0.9, dtype_momentum=None,
                     weight_decay_rate=0.01, decay_offset=3, clipping_threshold=None),
        optax.adafactor(0.01, min_dim_size_to_factor=2, momentum=0.9, dtype_momentum=None,
                        weight_decay_rate=0.01, decay_offset=3, clipping_threshold=None)),
    "muon": (gc.muon(0.01), C.muon(0.01)),
    "muon(3-D dimension numbers)": (gc.muon(0.003, muon_weight_dimension_numbers=DIMS),
                                    C.muon(0.003, muon_weight_dimension_numbers=OPTAX_DIMS)),
    "muon(dimension numbers function, plain momentum, decay)": (
        gc.muon(0.003, nesterov=False, weight_decay=0.1,
                muon_weight_dimension_numbers=lambda params: DIMS),
        C.muon(0.003, nesterov=False, weight_decay=0.1,
               muon_weight_dimension_numbers=lambda params: OPTAX_DIMS)),
    "muon(dion, aol, adaptive, consistent_rms)": (
        gc.muon(0.003, ns_coeffs="dion", preconditioning="aol", adaptive=True,
                consistent_rms=0.2),
        C.muon(0.003, ns_coeffs="dion", preconditioning="aol", adaptive=True,
               consistent_rms=0.2)),
    "muon(schatten)": (gc.muon(0.003, preconditioning="schatten"),
                       C.muon(0.003, preconditioning="schatten")),
    # Not a registry row: restarted at a huge count with a zero second moment (the saturation
    # test), an unclipped ADOPT divides by ε, as Optax's.
    "adopt(nesterov, no clipping)": (gc.adopt(0.03, nesterov=True, use_clipping=False),
                                     C.adopt(0.03, nesterov=True, use_clipping=False)),
}


@functools.lru_cache(maxsize=None)
def runs(name):
    ours, theirs = PAIRS[name]

    def run():
        ref64, _ = trajectory(theirs, jnp.float64, STEPS)
        ours64, _ = trajectory(ours, jnp.float64, STEPS)
        ref32, grads32 = trajectory(theirs, jnp.float32, STEPS)
        ours32, _ = trajectory(ours, jnp.float32, STEPS, grads=grads32)
        return {"float64": (ours64, ref64), "float32": (ours32, ref32)}

    return jax.jit(run)()


@pytest.mark.parametrize("dtype, bound", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_matrix_trajectory_matches_optax(name, dtype, bound):
    actual, expected = runs(name)[dtype]
    assert all(leaf.dtype == jnp.dtype(dtype) for leaf in actual.values())
    assert max_relative_error(actual, expected) <= bound


def test_runs_make_progress():
    for name in ("adafactor(factored)", "muon"):
        final = {k: v[-1].reshape(initial_params(jnp.float64)[k].shape)
                 for k, v in runs(name)["float64"][0].items()}
        assert float(loss(final)) < 0.3 * float(loss(initial_params(jnp.float64)))


BIG = {"w": jax.ShapeDtypeStruct((256, 512), jnp.float32),
       "b": jax.ShapeDtypeStruct((512,), jnp.float32),
       "k": jax.ShapeDtypeStruct((4, 128, 256), jnp.float32)}
SIZE = 256 * 512 + 512 + 4 * 128 * 256

STATES = {
    "novograd": (gc.novograd(1e-3), optax.novograd(1e-3)),
    "adopt": (gc.adopt(1e-3), C.adopt(1e-3)),
    "ademamix": (gc.ademamix(1e-3), C.ademamix(1e-3)),
    "simplified_ademamix": (gc.simplified_ademamix(1e-3), C.simplified_ademamix(1e-3)),
    "madgrad": (gc.madgrad(1e-3), C.madgrad(1e-3)),
    "adafactor": (gc.adafactor(1e-3), optax.adafactor(1e-3)),
    "adafactor(momentum)": (gc.adafactor(1e-3, momentum=0.9), optax.adafactor(1e-3, momentum=0.9)),
    "muon": (gc.muon(1e-3), C.muon(1e-3)),
    "muon(3-D)": (gc.muon(1e-3, muon_weight_dimension_numbers=DIMS),
                  C.muon(1e-3, muon_weight_dimension_numbers=OPTAX_DIMS)),
}


def scalar_bytes(state):
    """The bytes of the state's scalars: step counts and, in gradchain, the hyperparameters
    (a few per stage, whatever the params' size)."""
    return sum(np.dtype(x.dtype).itemsize for x in jax.tree.leaves(state) if x.ndim == 0)


@pytest.mark.parametrize("name", sorted(STATES))
def test_state_is_no_larger_than_optax(name):
    ours, theirs = (jax.eval_shape(tx.init, BIG) for tx in STATES[name])
    per_parameter = [(gc.state_bytes(s) - scalar_bytes(s)) / SIZE for s in (ours, theirs)]
    assert per_parameter[0] <= per_parameter[1], per_parameter
    assert scalar_bytes(ours) <= 512  # the hyperparameters in the state


def test_adafactor_keeps_rows_and_columns_of_factored_leaves():
    state = jax.eval_shape(gc.adafactor(1e-3).init, BIG)
    nu = gc.find_state(state, "nu")
    assert (nu["w"].row.shape, nu["w"].col.shape) == ((256,), (512,))
    assert (nu["k"].row.shape, nu["k"].col.shape) == ((4, 128), (4, 256))
    assert nu["b"].shape == (512,)  # a vector keeps its full second moment
    assert gc.state_bytes(nu) == 4 * (256 + 512 + 4 * 128 + 4 * 256 + 512)


MATRIX_ROWS = [gc.muon, gc.adafactor]


def _run(make, rate, steps=4):
    tx = make(rate)
    params = initial_params(jnp.float64)

    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return (gc.apply_updates(p, u), s), None

    return jax.lax.scan(step, (params, tx.init(params)), length=steps)[0][0]


@pytest.mark.parametrize("make", MATRIX_ROWS, ids=lambda f: f.__name__)
def test_vmap_over_learning_rates_equals_separate_runs(make):
    rates = jnp.array([0.003, 0.01])
    batched = jax.jit(jax.vmap(lambda r: _run(make, r)))(rates)
    for i, rate in enumerate(rates):
        separate = jax.jit(lambda r: _run(make, r))(rate)
        chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], batched), separate,
                                    rtol=1e-12, atol=1e-14)


def test_jit_equals_eager():
    """Adafactor's factored rule, op by op and compiled (Muon's iteration is slow op by op)."""
    tx, params = gc.adafactor(0.01, min_dim_size_to_factor=2), initial_params(jnp.float64)
    step = lambda p, s: tx.update(jax.grad(loss)(p), s, p)
    eager = step(params, tx.init(params))
    compiled = jax.jit(step)(params, tx.init(params))
    chex.assert_trees_all_close(eager, compiled, rtol=1e-12, atol=1e-15)


@jax.jit
def standard_newton_schulz(x):
    return gc.newton_schulz(x, ((3.4445, -4.7750, 2.0315),) * 5, eps=1e-8)


@settings(max_examples=12, deadline=None)
@given(shape=st.sampled_from([(2, 9), (5, 5), (12, 12), (11, 3)]),
       seed=st.integers(0, 2 ** 16))
def test_newton_schulz_maps_singular_values_near_one(shape, seed):
    """``NS(U Σ Vᴴ) = U p(Σ) Vᴴ``: the singular vectors are kept, and every singular value of
    at least 2% of ``‖X‖_F`` lands in Muon's band (Jordan et al.'s coefficients trade exactness
    for speed: about [0.68, 1.2], not 1); smaller ones grow but stay positive."""
    x = jax.random.normal(jax.random.PRNGKey(seed), shape, jnp.float64)
    y = np.asarray(standard_newton_schulz(x))
    u, singular, vh = np.linalg.svd(np.asarray(x), full_matrices=False)
    mapped = u.T @ y @ vh.T
    np.testing.assert_allclose(mapped, np.diag(np.diag(mapped)), atol=1e-9)
    p = np.diag(mapped)
    large = singular >= 0.02 * np.linalg.norm(np.asarray(x))
    assert (p > 0).all() and p.max() < 1.25, p
    assert (p[large] > 0.6).all(), (p, singular)


def test_ns_dtype_runs_the_iteration_in_bfloat16():
    x = {"w": jax.random.normal(jax.random.PRNGKey(0), (6, 4), jnp.float32)}
    full, low = (gc.orthogonalize(ns_dtype=dtype) for dtype in (None, jnp.bfloat16))
    exact = full.update(x, full.init(x))[0]["w"]
    rounded = low.update(x, low.init(x))[0]["w"]
    assert rounded.dtype == jnp.float32
    error = float(jnp.max(jnp.abs(rounded - exact)) / jnp.max(jnp.abs(exact)))
    assert 1e-4 < error < 0.1, error  # bfloat16's 8 bits of mantissa, the algorithm intact


def test_debiased_nesterov_ema_saturates_with_the_step_count():
    """At the saturated count the look-ahead's ``1 - β^{t+1}`` must not wrap to ``β^{-2^31}``:
    the step equals that of a count where every ``β^t`` has underflowed too."""
    tx, grads = gc.nesterov_ema(0.95, debias=True), {"w": jnp.ones(3)}
    state = tx.init(grads)
    at = lambda count: tx.update(grads, state._replace(count=jnp.asarray(count, jnp.int32)))[0]
    chex.assert_trees_all_equal(at(np.iinfo(np.int32).max - 1), at(10 ** 6))
