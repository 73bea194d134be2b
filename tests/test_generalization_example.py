"""Smoke test of examples/generalization.py: it trains, reports SWATS' switch and writes its
figure (two epochs, two seeds, one optimizer: seconds)."""

import numpy as np

from examples_module import load_example


def test_main_trains_reports_the_switch_and_writes_the_figure(tmp_path, capsys):
    example = load_example("generalization")
    (result,) = example.main(["--epochs", "2", "--seeds", "2", "--optimizers", "swats",
                              "--out", str(tmp_path)])
    assert result.train_loss.shape == result.test_accuracy.shape == (2, 3)
    assert np.all(result.train_loss[:, -1] < 0.5 * result.train_loss[:, 0])
    assert np.all(result.test_accuracy[:, -1] > 0.8)
    # Both seeds switch to SGD within the two epochs (28 steps each; here, under float64,
    # after steps 7 and 49).
    assert np.all((result.switch_step >= 2) & (result.switch_step <= 2 * 28))
    assert "| swats |" in capsys.readouterr().out
    assert (tmp_path / "generalization.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
