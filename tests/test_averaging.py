"""Weight averaging: ``ema_params``, ``swa`` and ``swalr`` against PyTorch's ``swa_utils``.

The golden runs (``golden/make_torch_averaging.py``) train the shared problem with SGD and
momentum under a cosine schedule joined to ``SWALR``, with an SWA ``AveragedModel`` updated at
every second update after the 30th and an EMA ``AveragedModel`` updated at every update. The
same optimizer built from gradchain's pieces must give the same params, averages, learning
rates and counts of averaged updates (float64, closed loop).
"""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc
from golden_files import GOLDEN
from problems import gradient, initial_params, max_relative_error

with np.load(GOLDEN / "torch_averaging.npz") as data:
    DESCRIBED = json.loads(str(data["configs"]))
    ARRAYS = {key: data[key] for key in data.files if "/" in key}
STEPS, SWA_START, SWA_FREQ = (DESCRIBED[k] for k in ("steps", "swa_start", "swa_freq"))


def learning_rate(config):
    base = gc.schedules.cosine_annealing_lr(config["lr"], config["T_max"])
    annealed = gc.swalr(base(SWA_START), config["swa_lr"], config["anneal_epochs"],
                        config["anneal_strategy"])
    return gc.schedules.join_schedules([base, annealed], [SWA_START])


def averaged_sgd(config):
    inner = gc.sgd(learning_rate(config), momentum=DESCRIBED["momentum"])
    return gc.swa(gc.ema_params(inner, DESCRIBED["ema_decay"]), SWA_START, SWA_FREQ)


@jax.jit
def _run(rates):
    """The golden runs' loop for each configuration (one compilation: the schedules differ only
    in numbers, passed in as the learning rates of every step)."""
    tx = gc.swa(gc.ema_params(gc.sgd(lambda step: rates[step], momentum=DESCRIBED["momentum"]),
                              DESCRIBED["ema_decay"]), SWA_START, SWA_FREQ)
    params = initial_params(jnp.float64)

    def step(carry, _):
        p, s = carry
        u, s = tx.update(gradient(p), s, p)
        p = gc.apply_updates(p, u)
        n = gc.find_state(s, "n_averaged")
        return (p, s), (p, gc.swa_eval_params(s, p), gc.ema_eval_params(s, p), n)

    return jax.lax.scan(step, (params, tx.init(params)), length=STEPS)[1]


@pytest.mark.parametrize("name", sorted(DESCRIBED["configs"]))
def test_learning_rate_is_swalr_after_the_cosine(name):
    schedule = learning_rate(DESCRIBED["configs"][name])
    rates = np.array([schedule(t) for t in range(STEPS)])
    np.testing.assert_allclose(rates, ARRAYS[f"{name}/lr"], rtol=1e-13, atol=0)


@pytest.mark.parametrize("name", sorted(DESCRIBED["configs"]))
def test_params_and_averages_match_torch(name):
    schedule = learning_rate(DESCRIBED["configs"][name])
    params, swa, ema, n = _run(jnp.array([schedule(t) for t in range(STEPS)]))
    np.testing.assert_array_equal(n, ARRAYS[f"{name}/n_averaged"])
    # PyTorch's SWA model holds the initial params until its first average; swa_eval_params
    # gives the current params then (there is no average yet), and the average afterwards.
    first = int(np.argmax(n > 0))
    assert first == SWA_START + 1
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[:first], swa),
                                jax.tree.map(lambda x: x[:first], params))
    swa = jax.tree.map(lambda x: x[first:], swa)
    for kind, ours in (("params", params), ("swa", swa), ("ema", ema)):
        expected = {k: ARRAYS[f"{name}/{kind}/{k}"][first if kind == "swa" else 0:]
                    for k in ours}
        assert max_relative_error(ours, expected) < 1e-10, kind


def test_the_wrappers_leave_the_updates_as_they_are():
    params = initial_params(jnp.float64)
    inner = gc.adam(0.03)
    tx = gc.swa(gc.ema_params(inner, 0.5), swa_start=1)
    state, inner_state = tx.init(params), inner.init(params)
    for _ in range(3):
        grads = gradient(params)
        u, state = tx.update(grads, state, params)
        expected, inner_state = inner.update(grads, inner_state, params)
        chex.assert_trees_all_equal(u, expected)
        params = gc.apply_updates(params, u)


def test_ema_follows_the_formula_and_keeps_its_dtype():
    """a_1 = θ_1, a_t = β a_{t-1} + (1 - β) θ_t, kept in float32 for bfloat16 params."""
    params = {"w": jnp.array([1.0, -2.0], jnp.bfloat16)}
    tx = gc.ema_params(gc.sgd(0.5), 0.75, dtype=jnp.float32)
    state = tx.init(params)
    chex.assert_trees_all_equal(gc.ema_eval_params(state, params), params)
    expected = None
    for g in ([1.0, 1.0], [0.5, -1.0], [2.0, 0.25]):
        u, state = tx.update({"w": jnp.array(g, jnp.bfloat16)}, state, params)
        params = gc.apply_updates(params, u)
        theta = np.asarray(params["w"], np.float32)
        expected = theta if expected is None else 0.75 * expected + 0.25 * theta
    assert state.params_ema["w"].dtype == jnp.float32
    np.testing.assert_allclose(state.params_ema["w"], expected, rtol=1e-6)
    assert gc.ema_eval_params(state, params)["w"].dtype == jnp.bfloat16


def test_swa_averages_every_freq_updates_after_start():
    params = {"w": jnp.zeros(2)}
    tx = gc.swa(gc.sgd(1.0), swa_start=2, swa_freq=3)
    state = tx.init(params)
    visited = []
    for t in range(1, 11):
        u, state = jax.jit(tx.update)({"w": -jnp.full(2, float(t))}, state, params)
        params = gc.apply_updates(params, u)
        if t > 2 and t % 3 == 0:
            visited.append(np.asarray(params["w"]))
    assert int(state.n_averaged) == 3  # updates 3, 6 and 9
    np.testing.assert_allclose(gc.swa_eval_params(state, params)["w"], np.mean(visited, 0),
                               rtol=1e-15)


def test_swalr_shapes():
    """Cosine and linear annealing over ``anneal_epochs`` steps, then constant; none at 0."""
    cos, linear = gc.swalr(1.0, 0.2, 4), gc.swalr(1.0, 0.2, 4, "linear")
    np.testing.assert_allclose([cos(t) for t in range(6)],
                               [0.2 + 0.8 * (1 + np.cos(np.pi * min(t / 4, 1))) / 2
                                for t in range(6)], rtol=1e-15)
    np.testing.assert_allclose([linear(t) for t in range(6)],
                               [1.0, 0.8, 0.6, 0.4, 0.2, 0.2], rtol=1e-15)
    assert float(gc.swalr(1.0, 0.2, 0)(0)) == 0.2


@pytest.mark.parametrize("build, message", [
    (lambda: gc.ema_params(gc.sgd(0.1), 1.5), "ema_params: decay=1.5 is out of range"),
    (lambda: gc.swa(gc.sgd(0.1), swa_start=-1), "swa: swa_start=-1 is out of range"),
    (lambda: gc.swa(gc.sgd(0.1), swa_freq=0), "swa: swa_freq=0 is out of range"),
    (lambda: gc.swa(gc.sgd(0.1), swa_freq=1.5), "swa: swa_freq=1.5 is not an integer"),
    (lambda: gc.swa(gc.sgd), "swa: inner is"),
    (lambda: gc.swalr(0.1, 0.01, anneal_epochs=-1), "swalr: anneal_epochs=-1 is out of range"),
    (lambda: gc.swalr(0.1, 0.01, anneal_strategy="exp"), "swalr: anneal_strategy='exp'"),
])
def test_bad_arguments_are_refused_naming_them(build, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        build()


def test_update_without_params_is_refused():
    params = {"w": jnp.zeros(2)}
    for tx in (gc.swa(gc.sgd(0.1)), gc.ema_params(gc.sgd(0.1))):
        with pytest.raises(ValueError, match="update needs params"):
            tx.update(params, tx.init(params))
