"""Plots of schedules: the drawn lines are the schedules' values, and a PNG is written."""

import numpy as np

import gradchain as gc
from gradchain import schedules as S
from gradchain.tools.plotting import schedule_values


def test_plot_schedules_draws_each_schedule_and_writes_png(tmp_path):
    schedules = {"cosine": S.cosine_annealing_lr(1.0, 50),
                 "one-cycle": S.one_cycle_lr(1.0, 80),
                 "python-only": lambda step: 0.5}  # a schedule vmap broadcasts
    figure = gc.plot_schedules(schedules, 100, tmp_path / "s.png", log=True, title="t")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = figure.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == list(schedules)
    for line, schedule in zip(ax.get_lines(), schedules.values()):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(100))
        np.testing.assert_allclose(line.get_ydata(),
                                   np.broadcast_to(schedule_values(schedule, 100), (100,)))
    assert ax.get_yscale() == "log" and ax.get_title() == "t"


def test_plot_one_schedule_on_given_steps_and_axes():
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    steps = [0, 10, 20, 30]
    figure = gc.plot_schedules(S.step_lr(1.0, 10, 0.5), steps, ax=ax)
    assert figure is ax.figure
    (line,) = ax.get_lines()
    assert line.get_label() == "step_lr"
    np.testing.assert_allclose(line.get_ydata(), [1.0, 0.5, 0.25, 0.125])
