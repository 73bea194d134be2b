"""Smoke tests of the examples: they run, train and write their figure (seconds, not minutes)."""

import numpy as np
import pytest

from examples_module import load_example

demo = load_example("demo")
CONTENDERS = {c.name: c for c in demo.OPTIMIZERS}


@pytest.fixture(scope="module")
def digits():
    return demo.load_data(seed=0)


def test_digits_split_is_standardised(digits):
    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    np.testing.assert_allclose(np.mean(digits.x_train, axis=0), 0.0, atol=1e-5)
    assert set(np.unique(digits.y_test).tolist()) == set(range(10))


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_one_epoch_learns(digits, name):
    result = demo.train(CONTENDERS[name], digits, epochs=1, batch_size=64, progress=False)
    steps = len(digits.y_train) // 64
    assert result.train_losses.shape == (steps + 1,)
    assert np.all(np.isfinite(result.train_losses))
    # from about ln(10) = 2.3 (a random guess) to well under half of it in 22 steps
    assert result.train_losses[0] > 2.0
    assert result.train_losses[-1] < 0.5 * result.train_losses[0]
    assert result.test_accuracy > 0.5  # chance is 0.1


def test_main_prints_table_and_writes_figure(tmp_path, capsys):
    results = demo.main(["--epochs", "1", "--optimizers", "nesterov", "--out", str(tmp_path)])
    assert [r.name for r in results] == ["nesterov"]
    out = capsys.readouterr().out
    assert f"| nesterov | {CONTENDERS['nesterov'].learning_rate:g} |" in out
    figure = tmp_path / "demo_loss.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_optimizer_names_are_unique():
    assert len(CONTENDERS) == len(demo.OPTIMIZERS)
