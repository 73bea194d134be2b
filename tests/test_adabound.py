"""AdaBound/AMSBound beyond the golden trajectories: the recipe of the README (AMSBound with
decoupled weight decay and warm-up, composed from primitives) against a NumPy loop of its
formula, the bounds' limit, and the contracts the registry cannot give these aliases (their
bounds depend on the step count itself: see tests/registry.py): vmap and grad with respect
to the learning rate (jit is exercised by every trajectory)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc
from problems import INITIAL, initial_params, loss, max_relative_error, trajectory

PEAK, WARMUP, FINAL_LR, GAMMA, DECAY, B1, B2, EPS = 0.05, 20, 0.05, 0.05, 0.1, 0.9, 0.999, 1e-8
STEPS = 200


def warmup(count):
    return PEAK * jnp.minimum(1.0, (count.astype(jnp.float64) + 1) / WARMUP)


def amsbound_w():
    """AMSBound with decoupled weight decay and a warm-up: the README's recipe."""
    return gc.chain(
        gc.per_parameter_step(
            gc.ema(B1, hyperparam_name="b1"),
            gc.chain(gc.square(), gc.ema(B2, hyperparam_name="b2"), gc.max_v(),
                     gc.clip_lr(FINAL_LR, PEAK, GAMMA, EPS, b1=B1, b2=B2))),
        gc.add_decayed_weights(DECAY),
        gc.scale_by_learning_rate(warmup))


def numpy_amsbound_w(steps):
    """``θ -= γ_t (clip(√(1-β2^t)/(1-β1^t)/(√v_max + ε), f·lo_t, f·hi_t) · m + λθ)`` with
    ``f = final_lr · γ_t / γ_0``, written out on each leaf."""
    grad = jax.jit(jax.grad(loss))
    theta = {k: np.asarray(v, np.float64) for k, v in INITIAL.items()}
    m, v, v_max = ({k: np.zeros_like(x) for k, x in theta.items()} for _ in range(3))
    history = {k: [] for k in theta}
    for t in range(1, steps + 1):
        g = {k: np.asarray(x) for k, x in grad({k: jnp.asarray(x) for k, x in theta.items()})
             .items()}
        lr = PEAK * min(1.0, t / WARMUP)
        f = FINAL_LR * lr / PEAK
        lower, upper = f * (1 - 1 / (GAMMA * t + 1)), f * (1 + 1 / (GAMMA * t))
        for k in theta:
            m[k] = B1 * m[k] + (1 - B1) * g[k]
            v[k] = B2 * v[k] + (1 - B2) * g[k] ** 2
            v_max[k] = np.maximum(v_max[k], v[k])
            step = lr * np.sqrt(1 - B2 ** t) / (1 - B1 ** t) / (np.sqrt(v_max[k]) + EPS)
            theta[k] = theta[k] - (np.clip(step, lower, upper) * m[k] + lr * DECAY * theta[k])
            history[k].append(theta[k].copy())
    return {k: np.stack(x) for k, x in history.items()}


def test_readme_recipe_matches_its_formula():
    actual, _ = trajectory(amsbound_w(), jnp.float64, STEPS)
    assert max_relative_error(actual, numpy_amsbound_w(STEPS)) <= 1e-10


def test_recipe_without_decay_and_warmup_is_the_alias():
    recipe = gc.chain(
        gc.per_parameter_step(
            gc.ema(B1, hyperparam_name="b1"),
            gc.chain(gc.square(), gc.ema(B2, hyperparam_name="b2"), gc.max_v(),
                     gc.clip_lr(FINAL_LR, PEAK, GAMMA, EPS, b1=B1, b2=B2))),
        gc.scale_by_learning_rate(PEAK))
    alias = gc.amsbound(PEAK, B1, B2, FINAL_LR, GAMMA, EPS)
    chex.assert_trees_all_equal(trajectory(recipe, jnp.float64, 50),
                                trajectory(alias, jnp.float64, 50))


def test_closed_bounds_give_sgd_with_momentum_at_final_lr():
    """With γ huge the bounds are ``final_lr`` from the first step: ``θ -= final_lr · m``."""
    tx = gc.adabound(1e-3, final_lr=0.2, gamma=1e9)
    g = {"w": jnp.asarray([3.0, -1e-4]), "b": jnp.asarray([0.5])}
    u, state = tx.update(g, tx.init(g), g)
    u2, _ = tx.update(g, state, g)
    for key in g:
        np.testing.assert_allclose(u[key], -0.2 * 0.1 * g[key], rtol=1e-8)
        np.testing.assert_allclose(u2[key], -0.2 * 0.19 * g[key], rtol=1e-8)


ALIASES = {"adabound": gc.adabound, "amsbound": gc.amsbound}
RATE = 0.03


def run(tx, steps=5):
    """``(final loss, final params)`` after ``steps`` closed-loop updates (one ``lax.scan``)."""

    def step(carry, _):
        params, state = carry
        u, state = tx.update(jax.grad(loss)(params), state, params)
        return (gc.apply_updates(params, u), state), None

    params = initial_params(jnp.float64)
    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    return loss(params), params


@pytest.mark.parametrize("name", ALIASES)
def test_vmap_over_learning_rates_equals_separate_runs(name):
    rates = RATE * jnp.asarray([0.5, 2.0])
    batched = jax.jit(jax.vmap(lambda r: run(ALIASES[name](r))))(rates)
    single = jax.jit(lambda r: run(ALIASES[name](r)))
    for i, rate in enumerate(rates):
        chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], batched), single(rate),
                                    rtol=1e-13)


def test_grad_wrt_learning_rate_matches_central_difference():
    final_loss = jax.jit(lambda r: run(gc.amsbound(r))[0])
    rate = jnp.asarray(RATE)
    h = 1e-4 * RATE
    difference = (final_loss(rate + h) - final_loss(rate - h)) / (2 * h)
    assert abs(float(difference)) > 1e-2
    np.testing.assert_allclose(jax.grad(final_loss)(rate), difference, rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"final_lr": 0.0},
     r"adabound: final_lr=0.0 is out of range; expected final_lr in \(0, inf\)"),
    ({"gamma": -1.0}, r"adabound: gamma=-1.0 is out of range"),
    ({"eps": -1e-8}, r"adabound: eps=-1e-08 is out of range"),
    ({"b1": 1.0}, r"adabound: b1=1.0 is out of range"),
])
def test_invalid_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gc.adabound(1e-3, **kwargs)
