"""The composition kit: primitives written from public names only, checked against Optax and NumPy."""

from __future__ import annotations

import re
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc

PARAMS = {"w": jnp.arange(6.0).reshape(2, 3) / 7, "b": jnp.linspace(-1.0, 1.0, 3)}


def grads(params, k):
    return jax.tree.map(lambda x: jnp.sin(3 * x + k) + 0.1, params)


def run(tx, steps, params=PARAMS):
    state = tx.init(params)
    step = jax.jit(tx.update)
    for k in range(steps):
        updates, state = step(grads(params, k), state, params)
        params = gc.apply_updates(params, updates)
    return params, state


def run_optax(tx, steps, params=PARAMS):
    state = tx.init(params)
    for k in range(steps):
        updates, state = tx.update(grads(params, k), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


# ----- per element -----------------------------------------------------------------------------

def test_stateless_rule_in_one_line_keeps_the_updates_dtype():
    sign = gc.elementwise(jnp.sign, name="sign")
    params = {"w": jnp.array([-2.0, 0.0, 3.0], jnp.bfloat16)}
    state = sign.init(params)
    out, state = sign.update(params, state)
    assert out["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(out["w"], np.float32), [-1.0, 0.0, 1.0])
    assert state == gc.HyperparamsState(None, {})


def gradient_difference():
    """Adan's ``g_t - g_{t-1}`` (``g_0 = 0``): a new stateful primitive."""
    return gc.elementwise(lambda u, stat: (u - stat, u), name="gradient_difference",
                          statistic=0.0)


def test_stateful_rule_matches_numpy():
    tx = gradient_difference()
    state = tx.init(PARAMS)
    previous = jax.tree.map(np.zeros_like, PARAMS)
    for k in range(3):
        g = grads(PARAMS, k)
        out, state = tx.update(g, state)
        chex.assert_trees_all_close(out, jax.tree.map(lambda a, b: np.asarray(a) - b, g,
                                                      previous), rtol=1e-15)
        previous = jax.tree.map(np.asarray, g)
    chex.assert_trees_all_equal(state.stat, g)


@gc.public
def scale_by_belief(b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16):
    """AdaBelief from public parts, its first moment kept once (shared)."""
    gc.check_range("scale_by_belief", "b1", b1, 0, 1, high_open=True)
    m = gc.share("m", gc.ema(b1, hyperparam_name="b1"))

    def belief_rule(u, stat, m, b2, eps_root):
        new = b2 * stat + (1 - b2) * (u - m) * (u - m) + eps_root
        return new, new

    belief = gc.elementwise(belief_rule, name="belief", statistic=0.0, reads=("m",),
                            hyperparams={"b2": b2, "eps_root": eps_root},
                            output_dtype="statistic")
    return gc.divide_by_sqrt(gc.chain(m, gc.bias_correction(b1, hyperparam_name="b1")),
                             gc.chain(belief, gc.bias_correction(b2, hyperparam_name="b2")),
                             eps=eps)


def param_shaped_bytes(state, params):
    shapes = {jnp.shape(p) for p in jax.tree.leaves(params)}
    return sum(x.nbytes for x in jax.tree.leaves(state) if jnp.shape(x) in shapes)


def test_shared_statistic_gives_optax_adabelief_with_its_state_size():
    tx = gc.chain(scale_by_belief(), gc.scale_by_learning_rate(1e-2))
    ours, state = run(tx, 100)
    theirs, optax_state = run_optax(optax.adabelief(1e-2), 100)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-12, atol=1e-14)
    assert param_shaped_bytes(state, PARAMS) == param_shaped_bytes(optax_state, PARAMS)


def test_shared_statistic_read_before_it_is_shared_or_shared_twice_is_refused():
    early = gc.chain(gc.shared("m"), gc.share("m", gc.ema(0.9)))
    with pytest.raises(ValueError, match=re.escape("no statistic named 'm' has been shared")):
        early.update(PARAMS, early.init(PARAMS))
    twice = gc.chain(gc.share("m", gc.ema(0.9)), gc.share("m", gc.ema(0.5)))
    with pytest.raises(ValueError, match="already shared"):
        twice.update(PARAMS, twice.init(PARAMS))
    with pytest.raises(TypeError, match="share: name='not a name' must be a Python identifier"):
        gc.share("not a name", gc.ema(0.9))


# ----- hyperparameters, schedules, counts ------------------------------------------------------

def lion_direction(b1=0.9, b2=0.99):
    """Lion's step as one rule: ``sign(β1 m + (1-β1) g)``, ``m ← β2 m + (1-β2) g``."""
    def rule(u, stat, b1, b2):
        return jnp.sign(b1 * stat + (1 - b1) * u), b2 * stat + (1 - b2) * u
    return gc.elementwise(rule, name="lion_direction", hyperparams={"b1": b1, "b2": b2},
                          statistic=0.0)


def test_one_rule_lion_equals_optax_including_b2_zero():
    for b2 in (0.99, 0.0):
        tx = gc.chain(lion_direction(0.9, b2), gc.scale_by_learning_rate(1e-2))
        ours, _ = run(tx, 30)
        theirs, _ = run_optax(optax.lion(1e-2, b1=0.9, b2=b2, weight_decay=0.0), 30)
        chex.assert_trees_all_close(ours, theirs, rtol=1e-14, atol=1e-15)


def test_schedules_are_evaluated_at_the_step_and_constants_can_be_set():
    factor = gc.elementwise(lambda u, factor: u * factor, name="times",
                            hyperparams={"factor": lambda t: 1.0 + t})
    state = factor.init(PARAMS)
    assert state.count is not None
    outs = []
    for _ in range(3):
        out, state = factor.update(PARAMS, state)
        outs.append(float(out["b"][0]))
    assert outs == pytest.approx([-1.0, -2.0, -3.0])

    fixed = gc.elementwise(lambda u, factor: u * factor, name="times", hyperparams={"factor": 2.0})
    state = fixed.init(PARAMS)
    assert state.count is None  # nothing reads the step: no counter in the state
    state = gc.set_hyperparams(fixed, state, factor=5.0)
    out, _ = jax.jit(fixed.update)(PARAMS, state)
    np.testing.assert_allclose(out["b"], 5 * np.asarray(PARAMS["b"]))


def bias_corrected(decay):
    return gc.elementwise(lambda u, correction: u / correction, name="corrected",
                          hyperparams={"decay": decay},
                          scalars=lambda decay, step: {"correction": 1 - decay ** step})


def test_scalars_run_once_per_update_with_the_step_from_one():
    tx = gc.chain(gc.ema(0.9, hyperparam_name="decay"), bias_corrected(0.9))
    reference = gc.chain(gc.ema(0.9, hyperparam_name="decay"), gc.bias_correction(0.9))
    chex.assert_trees_all_equal(run(tx, 5)[0], run(reference, 5)[0])


def test_carry_keeps_update_level_values():
    class PeakState(NamedTuple):
        count: object
        peak: jax.Array
        hyperparams: dict

    peak = gc.cross_leaf(
        lambda u, peak: u / peak, name="normalize_by_peak",
        reductions={"largest": gc.tree_max(lambda u: jnp.max(jnp.abs(u)))},
        scalars=lambda largest, peak: {"peak": jnp.maximum(largest, peak)},
        carry={"peak": 1e-30}, state_type=PeakState)
    state = peak.init(PARAMS)
    big = jax.tree.map(lambda x: 10 * x, PARAMS)
    _, state = peak.update(big, state)
    out, state = peak.update(PARAMS, state)
    assert float(state.peak) == pytest.approx(10.0)
    chex.assert_trees_all_close(out, jax.tree.map(lambda x: x / 10, PARAMS))
    with pytest.raises(TypeError, match="with carry, give state_type"):
        gc.elementwise(lambda u: u, name="x", carry={"peak": 0.0})


# ----- per leaf and cross leaf -----------------------------------------------------------------

def factored_second_moment(decay=0.8):
    """Adafactor's row and column means of ``g²`` for matrices (rows + columns of state)."""
    def init(param, dtype):
        if jnp.ndim(param) == 2:
            return {"rows": jnp.zeros(param.shape[0], dtype),
                    "cols": jnp.zeros(param.shape[1], dtype)}
        return {"full": jnp.zeros(jnp.shape(param), dtype)}

    def rule(u, stat, decay):
        g2 = u * u
        if jnp.ndim(u) != 2:
            full = decay * stat["full"] + (1 - decay) * g2
            return u / jnp.sqrt(full), {"full": full}
        rows = decay * stat["rows"] + (1 - decay) * g2.mean(axis=1)
        cols = decay * stat["cols"] + (1 - decay) * g2.mean(axis=0)
        v = jnp.outer(rows, cols) / rows.mean()
        return u / jnp.sqrt(v), {"rows": rows, "cols": cols}

    return gc.per_leaf(rule, name="factored_second_moment", hyperparams={"decay": decay},
                       statistic=init)


def test_per_leaf_rule_keeps_rows_and_columns_and_matches_numpy():
    tx = factored_second_moment(0.8)
    state = tx.init(PARAMS)
    assert state.stat["w"]["rows"].shape == (2,) and state.stat["w"]["cols"].shape == (3,)
    rows, cols = np.zeros(2), np.zeros(3)
    for k in range(3):
        g = grads(PARAMS, k)
        out, state = tx.update(g, state)
        w = np.asarray(g["w"])
        rows = 0.8 * rows + 0.2 * (w * w).mean(axis=1)
        cols = 0.8 * cols + 0.2 * (w * w).mean(axis=0)
        np.testing.assert_allclose(out["w"], w / np.sqrt(np.outer(rows, cols) / rows.mean()),
                                   rtol=1e-13)


def test_per_leaf_statistic_in_an_nnx_optimizer():
    from flax import nnx
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, gc.chain(factored_second_moment(0.8),
                                              gc.scale_by_learning_rate(0.1)), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x):
        grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model)
        optimizer.update(model, grads)

    before = np.asarray(model.kernel[...])
    for _ in range(2):
        step(model, optimizer, jnp.ones((4, 3)))
    assert np.all(np.isfinite(model.kernel[...])) and not np.allclose(model.kernel[...], before)
    stat = optimizer.opt_state[0].stat
    assert stat["kernel"]["rows"].shape == (3,) and stat["bias"]["full"].shape == (2,)


def newton_schulz(steps=5):
    """Muon's quintic Newton-Schulz iteration towards the orthogonal factor of a matrix."""
    a, b, c = 3.4445, -4.7750, 2.0315

    def rule(u):
        if jnp.ndim(u) != 2:
            return u
        x = u / (jnp.linalg.norm(u) + 1e-7)
        for _ in range(steps):
            gram = x @ x.T
            x = a * x + (b * gram + c * gram @ gram) @ x
        return x

    return gc.per_leaf(rule, name="newton_schulz")


def test_per_leaf_matrix_rule_equals_optax_orthogonalization():
    from optax.contrib._muon import orthogonalize_via_newton_schulz
    tx = newton_schulz()
    out, _ = tx.update(grads(PARAMS, 0), tx.init(PARAMS))
    expected = orthogonalize_via_newton_schulz(grads(PARAMS, 0)["w"], jnp.array([3.4445, -4.7750,
                                                                                  2.0315]),
                                               ns_steps=5, eps=1e-7)
    np.testing.assert_allclose(out["w"], expected, rtol=1e-12, atol=1e-12)


def global_clip(max_norm):
    return gc.cross_leaf(
        lambda u, factor: u * factor, name="global_clip", hyperparams={"max_norm": max_norm},
        reductions={"squares": gc.tree_sum(lambda u: jnp.sum(u * u))},
        scalars=lambda squares, max_norm: {
            "factor": jnp.minimum(1.0, max_norm / jnp.sqrt(squares))})


def test_cross_leaf_rule_equals_optax_and_knows_the_mesh():
    tx = global_clip(0.5)
    g = grads(PARAMS, 1)
    out, _ = tx.update(g, tx.init(g))
    expected, _ = optax.clip_by_global_norm(0.5).update(g, None)
    chex.assert_trees_all_close(out, expected, rtol=1e-14)

    split = gc.cross_leaf(
        lambda u, factor: u * factor, name="global_clip", axis_name="i",
        hyperparams={"max_norm": 0.5},
        reductions={"squares": gc.tree_sum(lambda u: jnp.sum(u * u))},
        scalars=lambda squares, max_norm: {
            "factor": jnp.minimum(1.0, max_norm / jnp.sqrt(squares))})
    x = {"v": jnp.arange(8.0) / 8}
    devices = jax.local_device_count()
    pieces = {"v": x["v"].reshape(devices, -1)}
    state = jax.vmap(split.init)(pieces)
    sharded, _ = jax.vmap(split.update, axis_name="i")(pieces, state)
    whole, _ = tx.update(x, tx.init(x))
    np.testing.assert_allclose(np.asarray(sharded["v"]).reshape(-1), whole["v"], rtol=1e-14)


# ----- the contract ----------------------------------------------------------------------------

def test_errors_name_the_public_constructor_the_path_and_the_input():
    @gc.public
    def my_clip(max_norm=1.0):
        gc.check_range("my_clip", "max_norm", max_norm, 0, low_open=True)
        return global_clip(max_norm)

    with pytest.raises(ValueError, match=r"^my_clip: max_norm=-1"):
        my_clip(-1.0)

    @gc.public
    def my_difference():
        return gradient_difference()

    tx = my_difference()
    with pytest.raises(ValueError, match=r"^my_difference: gradient_difference: .*c.* is in the "
                                         "updates but not in the optimizer state"):
        tx.update({**PARAMS, "c": jnp.ones(2)}, tx.init(PARAMS))
    with pytest.raises(TypeError, match=r"asks for \['beta'\]"):
        bad = gc.elementwise(lambda u, beta: u * beta, name="bad")
        bad.update(PARAMS, bad.init(PARAMS))
    with pytest.raises(TypeError, match="floating-point"):
        gc.elementwise(jnp.sign, name="sign").init({"i": jnp.arange(3)})


def test_rules_under_jit_vmap_and_grad():
    def loss(lr):
        tx = gc.chain(lion_direction(), gc.scale_by_learning_rate(lr))
        params, _ = run(tx, 3)
        return sum(jnp.sum(p) for p in jax.tree.leaves(params))

    slope = jax.grad(loss)(1e-2)
    step = 1e-6
    assert float(slope) == pytest.approx(
        float(loss(1e-2 + step) - loss(1e-2 - step)) / (2 * step), rel=1e-6)
    tx = gradient_difference()
    batch = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), PARAMS)
    out, _ = jax.vmap(tx.update)(batch, jax.vmap(tx.init)(batch))
    chex.assert_trees_all_close(out, batch)
