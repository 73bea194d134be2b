"""The learning-rate range test on a real small model: a 64-32-10 MLP on scikit-learn's digits.

Training at the suggested rate converges; training at ten times the rate where the test stopped
does not; the caller's params are untouched; the curve is what the docstring says (exponential
rates from 1e-7, the smoothed loss, the stop rule, the suggestion rule).
"""

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import gradchain as gc
from gradchain import schedules as S

X, Y = load_digits(return_X_y=True)
X = ((X - X.mean(0)) / (X.std(0) + 1e-8)).astype(np.float32)
Y = Y.astype(np.int32)


def init_params(seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return {"w1": jax.random.normal(k1, (64, 32), jnp.float32) / 8,
            "b1": jnp.zeros(32, jnp.float32),
            "w2": jax.random.normal(k2, (32, 10), jnp.float32) / np.sqrt(32),
            "b2": jnp.zeros(10, jnp.float32)}


def loss_fn(params, batch):
    """Mean softmax cross-entropy of the MLP."""
    x, y = batch
    hidden = jax.nn.relu(x @ params["w1"] + params["b1"])
    logits = hidden @ params["w2"] + params["b2"]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def batches(seed=0, size=64):
    """Endless random mini-batches."""
    rng = np.random.default_rng(seed)
    while True:
        index = rng.choice(len(X), size, replace=False)
        yield X[index], Y[index]


def full_loss(params):
    return float(loss_fn(params, (X, Y)))


def train(tx, params, learning_rate, steps=200):
    """``steps`` updates at ``learning_rate`` (one scan); the loss on all digits after."""
    data = list(itertools.islice(batches(seed=1), steps))
    xs, ys = np.stack([b[0] for b in data]), np.stack([b[1] for b in data])
    state = gc.set_hyperparams(tx, tx.init(params), learning_rate=learning_rate)

    def step(carry, batch):
        p, s = carry
        updates, s = tx.update(jax.grad(loss_fn)(p, batch), s, p)
        return (gc.apply_updates(p, updates), s), None

    (params, _), _ = jax.jit(lambda p, s: jax.lax.scan(step, (p, s), (xs, ys)))(params, state)
    return full_loss(params)


OPTIMIZER = gc.sgd(0.1, momentum=0.9)  # the learning rate it was built with is swept over


@pytest.fixture(scope="module")
def found():
    params = init_params()
    before = jax.tree.map(np.array, params)
    result = gc.lr_finder(loss_fn, params, batches(), OPTIMIZER, progress=False)
    return params, before, result


def test_training_at_the_suggestion_converges(found):
    params, _, result = found
    start = full_loss(params)
    assert start > 2.0  # about ln 10 for a fresh network
    assert 1e-3 < result.suggestion < result.stop_lr
    assert train(OPTIMIZER, params, result.suggestion) < 0.05 * start


def test_training_at_ten_times_the_stop_rate_does_not_converge(found):
    params, _, result = found
    assert result.diverged
    after = train(OPTIMIZER, params, 10 * result.stop_lr)
    assert not np.isfinite(after) or after > full_loss(params)


def test_the_callers_params_are_unchanged(found):
    params, before, _ = found
    for key in params:
        np.testing.assert_array_equal(np.asarray(params[key]), before[key])
    as_numpy = jax.tree.map(np.array, params)
    gc.lr_finder(loss_fn, as_numpy, batches(), OPTIMIZER, num_steps=5, progress=False)
    for key in params:
        np.testing.assert_array_equal(as_numpy[key], before[key])


def test_the_curve_follows_the_documented_rules(found):
    _, _, r = found
    n = len(r.losses)
    expected_rates = 1e-7 * (10.0 / 1e-7) ** (np.arange(100) / 99)
    np.testing.assert_allclose(r.learning_rates, expected_rates[:n], rtol=1e-12)
    average, smoothed = 0.0, []
    for i, loss in enumerate(r.losses):
        average = 0.9 * average + 0.1 * loss
        smoothed.append(average / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(r.smoothed_losses, smoothed, rtol=1e-12)
    # it stopped at the first point whose smoothed loss exceeds 4x the best so far
    ratio = np.asarray(smoothed) / np.minimum.accumulate(smoothed)
    assert ratio[-1] > 4 and np.all(ratio[:-1] <= 4)
    assert r.stop_lr == r.learning_rates[-1]
    assert r.suggestion == pytest.approx(r.learning_rates[np.argmin(smoothed)] / 10)


def test_steepest_suggestion_lies_on_the_falling_part():
    result = gc.lr_finder(loss_fn, init_params(), batches(), OPTIMIZER, suggest="steepest",
                          progress=False)
    i = int(np.searchsorted(result.learning_rates, result.suggestion))
    lowest = int(np.argmin(result.smoothed_losses))
    assert len(result.learning_rates) // 10 <= i < lowest
    assert result.smoothed_losses[i] < result.smoothed_losses[0]


def test_linear_mode_and_batches_running_out():
    result = gc.lr_finder(loss_fn, init_params(), itertools.islice(batches(), 7),
                          OPTIMIZER, start_lr=1e-3, end_lr=1e-2, num_steps=10, mode="linear",
                          progress=False)
    np.testing.assert_allclose(result.learning_rates, np.linspace(1e-3, 1e-2, 10)[:7])
    assert not result.diverged and result.stop_lr == result.learning_rates[-1]


def test_any_optimizer_and_a_named_hyperparameter():
    """Adam behind gradient clipping, inside parameter groups: the sweep reaches both groups'
    learning rates by name; a schedule cannot be swept."""
    adam = gc.chain(gc.clip_by_global_norm(1.0), gc.adam(1e-3))
    result = gc.lr_finder(loss_fn, init_params(), batches(), adam, progress=False)
    assert result.diverged and 1e-4 < result.suggestion < 1.0
    groups = gc.param_groups({"w": gc.adam(1e-3), "b": gc.sgd(0.1)},
                             lambda path, leaf: "w" if leaf.ndim > 1 else "b")
    with pytest.raises(ValueError, match="'learning_rate' is ambiguous"):
        gc.lr_finder(loss_fn, init_params(), batches(), groups, num_steps=3, progress=False)
    swept = gc.lr_finder(loss_fn, init_params(), batches(), groups, num_steps=3,
                         hyperparam="inner_states/w/learning_rate", progress=False)
    assert len(swept.losses) == 3
    with pytest.raises(ValueError, match="follows a schedule"):
        gc.lr_finder(loss_fn, init_params(), batches(), gc.sgd(S.step_lr(0.1, 10)),
                     num_steps=3, progress=False)


def test_progress_bar_and_plot(tmp_path, capsys):
    result = gc.lr_finder(loss_fn, init_params(), batches(), OPTIMIZER, num_steps=4)
    assert "lr range test" in capsys.readouterr().err
    figure = result.plot(tmp_path / "finder.png")
    assert (tmp_path / "finder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    marked = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert marked == [result.suggestion]


@pytest.mark.parametrize("kwargs, message", [
    (dict(start_lr=0.0), "lr_finder: start_lr=0.0 is out of range; expected start_lr in "
                         "(0, inf)"),
    (dict(start_lr=1.0, end_lr=0.5), "lr_finder: end_lr=0.5 is out of range"),
    (dict(num_steps=1), "lr_finder: num_steps=1 is out of range"),
    (dict(mode="cubic"), "lr_finder: mode='cubic' is not one of 'exponential', 'linear'"),
    (dict(suggest="valley"), "lr_finder: suggest='valley' is not one of 'minimum', "
                             "'steepest'"),
    (dict(diverge_threshold=1.0), "lr_finder: diverge_threshold=1.0 is out of range"),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        gc.lr_finder(loss_fn, init_params(), batches(), OPTIMIZER, progress=False, **kwargs)


def test_no_batches_raise():
    with pytest.raises(ValueError, match="lr_finder: batches gave no batch"):
        gc.lr_finder(loss_fn, init_params(), iter([]), OPTIMIZER, progress=False)
