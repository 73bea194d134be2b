"""Smoke test of examples/schedules.py: it draws both figures and its range tests behave."""

import numpy as np

from examples_module import load_example


def test_every_panel_draws_and_the_range_test_runs(tmp_path, capsys):
    example = load_example("schedules")
    drawn = {s.__name__ for panel in example.schedule_panels(200).values()
             for s in panel.values()}
    assert drawn == {"step_lr", "multi_step_lr", "exponential_lr", "constant_lr",
                     "polynomial_lr", "linear_lr", "cosine_annealing_lr",
                     "cosine_annealing_warm_restarts", "cyclic_lr", "cyclic_momentum",
                     "one_cycle_lr", "one_cycle_momentum", "constant_schedule",
                     "linear_schedule", "polynomial_schedule", "cosine_decay_schedule",
                     "warmup_cosine_decay_schedule", "warmup_constant_schedule",
                     "linear_warmup", "join_schedules", "batch_size_warmup"}
    results = example.main(["--steps", "200", "--out", str(tmp_path), "--optimizers", "adam",
                            "--no-progress"])
    for name in ("schedules.png", "lr_finder.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result, rates, after = results["adam"]
    assert result.diverged and result.suggestion < result.stop_lr
    assert after["suggested"] < 0.5  # from about 2.3 before training
    assert not np.isfinite(after["10 x stop"]) or after["10 x stop"] > 2.0
    assert "| adam | 0.003 |" in capsys.readouterr().out
