"""``gc.one_pass``: a chain's per-element work as one compiled loop, equal to XLA's to the bit.

Every check compares the one-pass kernel with the same function compiled by XLA, on the same
inputs. Where no C++ compiler is found the kernel tests are skipped (``one_pass`` then runs
XLA's code, which ``test_without_a_compiler_it_runs_xla`` checks).
"""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc
from gradchain.execution import cpu_kernels
from registry import CONFIGS

# The kernels are checked against XLA's optimized code, to the bit (tests/conftest.py).
pytestmark = pytest.mark.optimized_xla

needs_compiler = pytest.mark.skipif(cpu_kernels.compiler() is None,
                                    reason="no C++ compiler: one_pass runs XLA's code")

# Rows where LLVM, in XLA's loops, contracts a different product into a fused multiply-add
# than the kernel does (the rule it follows there is not known): a few ulps per step.
CONTRACTED_ELSEWHERE = {"adabelief(nesterov=True)": 4}
ROWS = ["adam()", "adamw(weight_decay=0.1, mask=decay_only_w, nesterov=True)",
        "sgd(momentum=0.9, nesterov=True)", "adagrad()", "lion()", "adabelief(nesterov=True)",
        "schedule_free_sgd()", "rprop"]


def _params(dtype):
    key = jax.random.PRNGKey(0)
    shapes = {"w": (40, 3), "b": (3,), "layers": [(5, 5), (7,)]}
    leaves, tree = jax.tree.flatten(shapes, is_leaf=lambda s: isinstance(s, tuple))
    return jax.tree.unflatten(tree, [
        jax.random.normal(jax.random.fold_in(key, k), s, dtype) for k, s in enumerate(leaves)])


def _ulps(a, b) -> int:
    a, b = np.asarray(a), np.asarray(b)
    if not np.issubdtype(a.dtype, np.floating):
        return 0 if np.array_equal(a, b) else 1 << 62
    signed = {4: np.int32, 8: np.int64}[a.itemsize]
    ia, ib = a.view(signed).astype(np.int64), b.view(signed).astype(np.int64)
    ia = np.where(ia < 0, np.iinfo(signed).min - ia, ia)  # monotone in the float value
    ib = np.where(ib < 0, np.iinfo(signed).min - ib, ib)
    return int(np.max(np.abs(ia - ib))) if a.size else 0


def _row(name):
    return next(c for c in CONFIGS if c.name == name)


@needs_compiler
@pytest.mark.parametrize("name,dtype", [(name, jnp.float32) for name in ROWS]
                         + [(name, jnp.float64) for name in ROWS[:2]])
def test_registry_rows_equal_xla(name, dtype):
    """Three steps from the same inputs: the kernel's updates and state equal XLA's (to the
    bit, except the rows of ``CONTRACTED_ELSEWHERE``)."""
    config = _row(name)
    tx = config.make(config.learning_rate)
    params = _params(dtype)
    grads = jax.tree.map(lambda p: jnp.sin(3 * p) / 10, params)
    assert gc.one_pass_available(tx, params) is None
    fused = jax.jit(gc.one_pass(tx, require=True).update)
    plain = jax.jit(tx.update)
    state = tx.init(params)
    worst = 0
    for _ in range(3):
        expected = plain(grads, state, params)
        got = fused(grads, state, params)
        chex.assert_trees_all_equal_shapes_and_dtypes(expected, got)
        worst = max([worst] + [_ulps(a, b) for a, b in
                               zip(jax.tree.leaves(expected), jax.tree.leaves(got))])
        state = expected[1]
    assert worst <= CONTRACTED_ELSEWHERE.get(name, 0), worst


def _special_values(dtype, n=4096):
    rng = np.random.default_rng(0)
    info = np.finfo(dtype)
    special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, info.tiny,
                        info.tiny / 4, -info.tiny / 8, info.max, -info.max, 0.5, 3.0],
                       dtype=dtype)
    values = (rng.standard_normal(n) * rng.choice([1e-3, 1.0, 1e3], n)).astype(dtype)
    values[: special.size] = special
    with np.errstate(over="ignore"):  # the largest values times -1.5: -inf, on purpose
        scaled = np.roll(values, 5) * np.asarray(-1.5, dtype)
    return values, scaled, np.roll(values, 11)


def _every_primitive(x, y, z):
    """One result per kernel primitive (and a few of their combinations)."""
    lax = jax.lax
    bigger = x > y
    return {
        "add": x + y, "sub": x - y, "mul": x * y, "div": x / y, "neg": -x,
        "max": jnp.maximum(x, y), "min": jnp.minimum(x, y), "abs": jnp.abs(x),
        "sign": jnp.sign(x), "sqrt": jnp.sqrt(x), "square": jnp.square(x),
        "pow3": lax.integer_pow(x, 3), "pow_minus2": lax.integer_pow(x, -2),
        "select": jnp.where(bigger, x, z), "eq": (x == y).astype(x.dtype),
        "ne": (x != y).astype(x.dtype), "le": (x <= y).astype(x.dtype),
        "ge": (x >= z).astype(x.dtype), "and_or_not": (bigger & ~(y < z) | (x == z)),
        "finite": jnp.isfinite(x),
        "fma_first": x * y + z, "fma_second": z + x * y, "fms": x * y - z, "sfm": z - x * y,
        "square_sub": jnp.square(x - y) * 0.25 + y * z,
        "div_chain": (x / y) / z, "div_of_div": x / (y / z), "div_by_literal": x / 3.0,
        "to_bool_and_back": (x != 0).astype(x.dtype) * y,
        # XLA's simplifier removes these (a subnormal x comes out unflushed, -0 + 0 is -0,
        # sqrt(x * x) is finite where x * x overflows); the kernel must do as it does.
        "plus_zero": x + 0.0, "zero_plus": 0.0 + x, "minus_zero": x - 0.0, "times_one": x * 1.0,
        "max_self": jnp.maximum(x, x), "min_self": jnp.minimum(x, x),
        "max_of_negation": jnp.maximum(x, -x), "min_of_negation": jnp.minimum(-x, x),
        "sqrt_of_square": jnp.sqrt(x * x), "sqrt_of_pow2": jnp.sqrt(x ** 2),
        "sqrt_of_abs_square": jnp.sqrt(jnp.abs(jnp.square(x))),
        "max_self_times_one": jnp.maximum(y, y * 1.0),
        # x86 LLVM makes a maximum (minimum) instruction of these selects, which flushes a
        # subnormal; not of the >= form, which would order -0 and +0.
        "select_greater": jnp.where(x > z, x, z), "select_smaller": jnp.where(x > z, z, x),
        "select_less": jnp.where(x < z, x, z), "select_at_least": jnp.where(x >= z, x, z),
        # XLA folds 1 / 0.5 into a constant factor, so LLVM contracts the product.
        "by_folded_reciprocal": z - (1.0 / x) * (jnp.maximum(y, 0.5) / 0.5),
        **_bounded_by_literals(x),
    }


def _bounded_by_literals(x):
    """``max``/``min`` of an array and a literal: the kernel writes one compare and select
    where the literal allows it (normal or infinite, and for float64 on the safe side), else
    the general form; the literals below are on both sides of that line."""
    tiny = float(jnp.finfo(x.dtype).tiny)
    literals = {"tiny": tiny, "zero": 0.0, "minus_zero": -0.0,
                "positive": 2.5, "negative": -1.5, "inf": np.inf, "minus_inf": -np.inf,
                "nan": np.nan, "minus_tiny": -tiny}
    out = {}
    for label, c in literals.items():
        out[f"max_{label}"] = jnp.maximum(x, c)
        out[f"min_{label}"] = jnp.minimum(x, c)
        out[f"max_{label}_first"] = jnp.maximum(c, x)
    return out


@needs_compiler
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_primitive_equals_xla_on_special_values(dtype):
    """NaN, ±0, ±inf, subnormals, the largest finite values: each kernel primitive gives XLA's
    bits (NaN payloads aside: any NaN equals any NaN)."""
    x, y, z = _special_values(dtype)
    expected = jax.jit(_every_primitive)(x, y, z)
    got = jax.jit(gc.one_pass_function(_every_primitive, require=True))(x, y, z)
    for name in expected:
        a, b = np.asarray(expected[name]), np.asarray(got[name])
        same = (a == b) & (np.signbit(a) == np.signbit(b)) if a.dtype != bool else (a == b)
        if a.dtype != bool:
            same |= np.isnan(a) & np.isnan(b)
        assert same.all(), (name, x[~same][:3], y[~same][:3], a[~same][:3], b[~same][:3])


@needs_compiler
def test_a_cheap_result_is_computed_again_where_xla_does():
    """``(x - z)**2`` is a result of its own; XLA squares again in the loop of
    ``(x - z) - (x - z)**2`` (it reads no other array) and LLVM contracts that product there,
    so the kernel must not read the first result back (float32; float64 alike in
    ``benchmarks/one_pass_agreement.py``)."""
    x, _, z = _special_values(np.float32)

    def square_and_rest(x, z):
        return {"square": jnp.square(x - z), "rest": (x - z) - jnp.square(x - z)}

    expected = jax.jit(square_and_rest)(x, z)
    got = jax.jit(gc.one_pass_function(square_and_rest, require=True))(x, z)
    for name in expected:
        assert _ulps(expected[name], got[name]) == 0, name


def _adam_step_donated(params):
    """Adam's whole step, plain and through ``one_pass_function`` (jitted, params and state
    donated), and the initial state."""
    tx = gc.adam(1e-3)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return gc.apply_updates(params, updates), state

    jitted = jax.jit(gc.one_pass_function(step, donate_argnums=(0, 1), require=True),
                     donate_argnums=(0, 1))
    return step, jitted, tx.init(params)


@needs_compiler
def test_one_call_per_32_leaves_and_no_loop_per_leaf():
    """100 leaves of one program: 4 custom calls, and no loop fusion per leaf left in XLA's
    step (only its scalar work); the moments are updated in place (donated)."""
    params = {f"p{k}": jnp.full((4, 2), k, jnp.float32) for k in range(100)}
    step, jitted, state = _adam_step_donated(params)
    hlo = jitted.lower(params, state, params).compile().as_text()
    assert hlo.count("custom_call_target=\"gradchain_") == 4
    assert "f32[4,2]{1,0} fusion" not in hlo and "f32[4,2]{1,0} copy" not in hlo
    expected = jax.jit(step)(params, state, params)
    grads = jax.tree.map(jnp.copy, params)
    got = jitted(params, state, grads)
    assert all(x.is_deleted() for x in jax.tree.leaves((params, state)) if x.ndim)
    chex.assert_trees_all_equal(expected, got)


@needs_compiler
def test_the_scalar_results_leave_through_the_first_call():
    """The step's scalar work (counts, bias corrections, hyperparameters and their records)
    is one fusion per dtype, and the first call copies the new scalars into the state's
    donated buffers: a one-leaf Adam step compiles to at most eight tasks, so XLA:CPU runs it
    in order on the calling thread (with more it hands them to its thread pool), and nothing
    is copied. Every donated buffer is consumed and the numbers are XLA's."""
    params = {"w": jnp.linspace(-1.0, 1.0, 1000, dtype=jnp.float32)}
    step, jitted, state = _adam_step_donated(params)
    entry = jitted.lower(params, state, params).compile().as_text().split("ENTRY")[1]
    ops = re.findall(r"= \S+ ([a-z][a-z-]*)\(", entry)
    tasks = [op for op in ops
             if op not in ("parameter", "constant", "get-tuple-element", "tuple", "bitcast")]
    assert len(tasks) <= 8 and "copy" not in tasks, tasks
    expected = jax.jit(step)(params, state, params)
    got = jitted(params, state, jax.tree.map(jnp.copy, params))
    assert all(x.is_deleted() for x in jax.tree.leaves((params, state)))
    chex.assert_trees_all_equal(expected, got)


@needs_compiler
def test_vmap_and_grad_run_xla_code_with_the_same_numbers():
    """Under ``vmap`` and ``grad`` the update runs XLA's code (a custom rule), so it equals
    the plain transformation's, batched and differentiated."""
    params = _params(jnp.float64)
    grads = jax.tree.map(lambda p: jnp.cos(p) / 7, params)

    def loss_after_step(learning_rate, wrap):
        tx = gc.adam(learning_rate)
        if wrap:
            tx = gc.one_pass(tx, require=True)
        updates, _ = tx.update(grads, tx.init(params), params)
        new = gc.apply_updates(params, updates)
        return sum(jnp.sum(jnp.square(p)) for p in jax.tree.leaves(new))

    grad = jax.jit(jax.grad(loss_after_step), static_argnums=1)
    np.testing.assert_allclose(grad(0.1, True), grad(0.1, False), rtol=1e-14)
    rates = jnp.array([0.1, 0.01, 0.3])
    batched = jax.jit(jax.vmap(loss_after_step, in_axes=(0, None)), static_argnums=1)
    np.testing.assert_allclose(batched(rates, True), batched(rates, False), rtol=1e-14)


@needs_compiler
def test_state_hyperparameters_and_equality_are_the_wrapped_optimizers():
    params = _params(jnp.float32)
    tx = gc.one_pass(gc.adamw(1e-3, weight_decay=0.1))
    state = tx.init(params)
    assert jax.tree.structure(state) == jax.tree.structure(gc.adamw(1e-3, 0.1).init(params))
    assert gc.get_hyperparams(state)["2/learning_rate"] == pytest.approx(1e-3)
    state = gc.set_hyperparams(tx, state, learning_rate=0.5)
    fused, _ = jax.jit(tx.update)(params, state, params)
    plain, _ = jax.jit(gc.adamw(1e-3, weight_decay=0.1).update)(params, state, params)
    chex.assert_trees_all_equal(fused, plain)
    assert gc.one_pass(gc.adam(0.1)) == gc.one_pass(gc.adam(0.1))
    assert gc.one_pass(gc.adam(0.1)) != gc.adam(0.1)


def test_work_that_is_not_per_element_runs_as_it_is():
    """A norm (LAMB's trust ratio) cannot run per element: the reason names the operation,
    ``require=True`` raises it, and without it the update is the plain one."""
    params = _params(jnp.float32)
    assert gc.one_pass_available(gc.lamb(1e-3), params) == (
        "the update has work that is not per-element (reduce_sum on an array)")
    with pytest.raises(ValueError, match="one_pass: cannot run the update as one pass: "
                                         "the update has work that is not per-element"):
        jax.jit(gc.one_pass(gc.lamb(1e-3), require=True).update)(
            params, gc.lamb(1e-3).init(params), params)
    state = gc.lamb(1e-3).init(params)
    got = jax.jit(gc.one_pass(gc.lamb(1e-3)).update)(params, state, params)
    expected = jax.jit(gc.lamb(1e-3).update)(params, state, params)
    chex.assert_trees_all_equal(got, expected)


@needs_compiler
def test_a_subnormal_literal_is_refused():
    """Two compilers each fold a subnormal constant their own way: such a function runs as
    XLA compiles it, and ``require=True`` names the reason."""
    x = jnp.asarray([-0.0, 1.0, -1.0], jnp.float32)
    bounded = lambda x: jnp.maximum(x, float(jnp.finfo(jnp.float32).tiny) / 4)
    with pytest.raises(ValueError, match="not per-element \\(a subnormal literal\\)"):
        jax.jit(gc.one_pass_function(bounded, require=True))(x)
    got = jax.jit(gc.one_pass_function(bounded))(x)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(jax.jit(bounded)(x)))


@needs_compiler
def test_a_prng_key_beside_the_loop_runs_in_xla():
    """A typed PRNG key among the inputs and results (a state's random key, say) is not
    per-element work: it stays in XLA, passed through or folded, and the loop still runs."""
    x, key = jnp.linspace(-1.0, 1.0, 8), jax.random.key(0)

    def step(x, key):
        return x * 2.0, key, jax.random.fold_in(key, 1)

    got = jax.jit(gc.one_pass_function(step, donate_argnums=(1,), require=True))(x, key)
    expected = jax.jit(step)(x, key)
    np.testing.assert_array_equal(got[0], expected[0])
    for a, b in zip(got[1:], expected[1:]):
        np.testing.assert_array_equal(jax.random.key_data(a), jax.random.key_data(b))


def test_without_a_compiler_it_runs_xla(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "compiler", lambda: None)
    params = _params(jnp.float32)
    reason = gc.one_pass_available(gc.adam(1e-3), params)
    assert reason == "no C++ compiler found ($CXX, g++, c++ or clang++)"
    tx = gc.one_pass(gc.adam(1e-3))
    state = tx.init(params)
    hlo = jax.jit(tx.update).lower(params, state, params).as_text()
    assert "gradchain_" not in hlo
    with pytest.raises(ValueError, match="no C\\+\\+ compiler found"):
        jax.jit(gc.one_pass(gc.adam(1e-3), require=True).update)(params, state, params)


def test_bad_argument_is_named():
    with pytest.raises(TypeError, match="one_pass: tx must be a GradientTransformation, "
                                        "got function"):
        gc.one_pass(lambda params: params)

