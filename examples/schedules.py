"""How the learning rate moves: every gradchain schedule in one figure, and the LR range test on
the demo's network.

1. ``schedules.png``: each family of ``gradchain.schedules`` (PyTorch's schedulers, Optax's
   names, warm-ups and joins, the momentum cycles, the batch-size rules) over the same steps,
   and ``reduce_on_plateau``'s scale on a loss that stalls.
2. ``lr_finder.png``: the learning-rate range test (notes 003) on the MLP of
   ``examples/demo.py`` for two of its optimizers, with the suggested rate marked; the script
   then trains from the same weights at the demo's rate, at the suggestion and at ten times the
   rate where the test stopped, and prints the losses.

    python examples/schedules.py [--steps 1000] [--out examples/out]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from matplotlib.figure import Figure

import gradchain as gc
from gradchain import schedules as S


def _load_demo():
    path = Path(__file__).with_name("demo.py")
    spec = importlib.util.spec_from_file_location("gradchain_examples_demo", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = _load_demo()


def schedule_panels(total: int) -> dict[str, dict[str, object]]:
    """Panel title -> {label: schedule}, every schedule sized to ``total`` steps."""
    t = total
    return {
        "step-like (PyTorch)": {
            "step_lr(step_size=T/5, γ=0.5)": S.step_lr(1.0, t // 5, 0.5),
            "multi_step_lr([.3T, .6T, .9T], 0.3)": S.multi_step_lr(
                1.0, [int(0.3 * t), int(0.6 * t), int(0.9 * t)], 0.3),
            "exponential_lr(γ: 1% left at T)": S.exponential_lr(1.0, 0.01 ** (1 / t)),
            "constant_lr(factor=1/3, T/4)": S.constant_lr(1.0, 1 / 3, t // 4)},
        "polynomial and linear (PyTorch)": {
            "polynomial_lr(power=1)": S.polynomial_lr(1.0, int(0.8 * t), 1.0),
            "polynomial_lr(power=2)": S.polynomial_lr(1.0, int(0.8 * t), 2.0),
            "polynomial_lr(power=0.5)": S.polynomial_lr(1.0, int(0.8 * t), 0.5),
            "linear_lr(0.1 → 1, T/3)": S.linear_lr(1.0, 0.1, 1.0, t // 3)},
        "cosine annealing and SGDR": {
            "cosine_annealing_lr(T_max=.8T, η_min=.05)": S.cosine_annealing_lr(
                1.0, int(0.8 * t), 0.05),
            "warm_restarts(T_0=T/4)": S.cosine_annealing_warm_restarts(1.0, t // 4),
            "warm_restarts(T_0=T/15, T_mult=2)": S.cosine_annealing_warm_restarts(
                1.0, t // 15, 2)},
        "cyclic_lr (Smith 2017)": {
            "triangular": S.cyclic_lr(0.1, 1.0, t // 10),
            "triangular2": S.cyclic_lr(0.1, 1.0, t // 10, mode="triangular2"),
            "exp_range(γ: 5% left at T)": S.cyclic_lr(0.1, 1.0, t // 20, t // 10,
                                                       mode="exp_range",
                                                       gamma=0.05 ** (1 / t))},
        "one_cycle_lr (Smith & Topin 2018)": {
            "cos, pct_start=0.3": S.one_cycle_lr(1.0, t),
            "linear, pct_start=0.25": S.one_cycle_lr(1.0, t, 0.25, "linear"),
            "three_phase": S.one_cycle_lr(1.0, t, three_phase=True)},
        "momentum cycles (inverse to the rate)": {
            "cyclic_momentum": S.cyclic_momentum(0.8, 0.9, t // 10, mode="triangular2"),
            "one_cycle_momentum": S.one_cycle_momentum(t),
            "one_cycle_momentum, three_phase": S.one_cycle_momentum(t, three_phase=True)},
        "Optax's names": {
            "constant_schedule(0.7)": S.constant_schedule(0.7),
            "linear_schedule(1 → .2, from T/5)": S.linear_schedule(1.0, 0.2, t // 2, t // 5),
            "polynomial_schedule(1 → .1, power 3)": S.polynomial_schedule(
                1.0, 0.1, 3, t // 2, t // 4),
            "cosine_decay_schedule(α=.1)": S.cosine_decay_schedule(0.9, int(0.8 * t), 0.1),
            "warmup_cosine_decay_schedule": S.warmup_cosine_decay_schedule(
                0.0, 1.0, t // 10, t, 0.05),
            "warmup_constant_schedule": S.warmup_constant_schedule(0.2, 0.5, t // 5)},
        "warm-up before any schedule, joins": {
            "linear_warmup(cyclic_lr, T/5)": S.linear_warmup(
                S.cyclic_lr(0.3, 0.6, t // 10), t // 5),
            "linear_warmup(cosine_annealing_lr, T/10)": S.linear_warmup(
                S.cosine_annealing_lr(1.0, int(0.9 * t)), t // 10),
            "join_schedules(constant, exp, cosine)": S.join_schedules(
                [S.constant_schedule(0.5), S.exponential_lr(0.9, 0.995),
                 S.cosine_annealing_lr(0.4, t // 3)], [t // 5, t // 2])},
        "batch size 256 → 2048, base lr 0.1 (notes 003)": {
            "linear rule + Goyal warm-up": S.batch_size_warmup(0.1, 256, 2048, t // 5),
            "square-root rule + warm-up": S.batch_size_warmup(0.1, 256, 2048, t // 5,
                                                              rule="sqrt"),
            "linear rule, then step decay": S.batch_size_warmup(
                0.1, 256, 2048, t // 5, then=lambda lr: S.multi_step_lr(
                    lr, [int(0.4 * t), int(0.7 * t)], 0.1))},
    }


def plateau_trace(total: int, seed: int = 0):
    """A noisy loss that falls, stalls, falls again and stalls, and the scale that
    ``reduce_on_plateau`` gives it (the loss is made up, not trained: only the decisions are
    shown)."""
    rng = np.random.default_rng(seed)
    t = np.arange(total) / total
    loss = (0.4 + np.exp(-t / 0.08) - 0.2 / (1 + np.exp(-(t - 0.55) / 0.03))
            + 0.005 * rng.standard_normal(total))
    tx = gc.reduce_on_plateau(factor=0.5, patience=total // 20, cooldown=total // 20)

    def step(state, value):
        _, state = tx.update(jnp.zeros(1), state, value=value)
        return state, state.scale

    scales = jax.jit(lambda s, v: jax.lax.scan(step, s, v)[1])(tx.init(jnp.zeros(1)),
                                                               jnp.asarray(loss))
    return loss, np.asarray(scales)


def plot_all_schedules(total: int, path: Path) -> None:
    panels = schedule_panels(total)
    figure = Figure(figsize=(27, 10.5), layout="constrained")
    axes = figure.subplots(2, 5).ravel()
    for ax, (title, schedules) in zip(axes, panels.items()):
        gc.plot_schedules(schedules, total, ax=ax, title=title,
                          ylabel="momentum" if "momentum" in title else "learning rate")
    ax = axes[-1]
    loss, scales = plateau_trace(total)
    ax.plot(loss, color="0.6", linewidth=0.8, label="loss (value=...)")
    ax.plot(scales, color="C3", linewidth=1.8, label="scale")
    ax.set_yscale("log")
    ax.set_title("reduce_on_plateau(factor=0.5, patience=cooldown=T/20)")
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    figure.suptitle(f"gradchain.schedules over {total} steps (base value 1 unless noted)",
                    fontsize=14)
    figure.savefig(path, dpi=110)


def digits_batches(data, batch_size: int, seed: int):
    """Endless shuffled mini-batches of the demo's training digits."""
    rng = np.random.default_rng(seed)
    n = data.x_train.shape[0]
    while True:
        order = rng.permutation(n)
        for i in range(n // batch_size):
            index = order[i * batch_size:(i + 1) * batch_size]
            yield data.x_train[index], data.y_train[index]


def range_test(contender, data, *, hidden: int, batch_size: int, seed: int, progress: bool):
    """The range test for one of the demo's optimizers, then short runs at three rates."""
    model = demo.MLP(hidden, rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)

    def loss_fn(params, batch):
        return demo.cross_entropy(nnx.merge(graphdef, params), *batch)

    tx = contender.build(contender.learning_rate)
    result = gc.lr_finder(loss_fn, params, digits_batches(data, batch_size, seed), tx,
                          progress=progress)
    steps = 3 * (data.x_train.shape[0] // batch_size)  # three epochs
    batches = list(itertools.islice(digits_batches(data, batch_size, seed + 1), steps))
    xs, ys = np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches])

    @jax.jit
    def fit(rate):
        state = gc.set_hyperparams(tx, tx.init(params), learning_rate=rate)

        def step(carry, batch):
            p, s = carry
            updates, s = tx.update(jax.grad(loss_fn)(p, batch), s, p)
            return (gc.apply_updates(p, updates), s), None

        (p, _), _ = jax.lax.scan(step, (params, state), (xs, ys))
        return loss_fn(p, (data.x_train, data.y_train))

    rates = {"demo": contender.learning_rate, "suggested": result.suggestion,
             "10 x stop": 10 * result.stop_lr}
    after = {name: float(fit(rate)) for name, rate in rates.items()}
    return result, rates, after, float(loss_fn(params, (data.x_train, data.y_train)))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps drawn per schedule")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out",
                        help="folder for the figures (created if missing)")
    parser.add_argument("--optimizers", nargs="+", default=["momentum", "adam"],
                        choices=[c.name for c in demo.OPTIMIZERS], metavar="NAME",
                        help="demo optimizers to run the range test for")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    schedules_png = args.out / "schedules.png"
    plot_all_schedules(args.steps, schedules_png)
    print(f"figure: {schedules_png}")

    data = demo.load_data(args.seed)
    contenders = {c.name: c for c in demo.OPTIMIZERS}
    figure = Figure(figsize=(7 * len(args.optimizers), 4.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(args.optimizers)))
    results = {}
    print("\n| optimizer | demo's lr | suggested lr | stopped at | loss before | after 3 epochs "
          "at demo's / suggested / 10 x stop lr |")
    print("|---|---:|---:|---:|---:|---|")
    for ax, name in zip(axes, args.optimizers):
        result, rates, after, before = range_test(
            contenders[name], data, hidden=64, batch_size=args.batch_size, seed=args.seed,
            progress=not args.no_progress)
        results[name] = (result, rates, after)
        gc.plot_lr_finder(result, ax=ax, title=f"range test: {name} on the demo's MLP "
                                               f"(batch {args.batch_size})")
        ax.axvline(contenders[name].learning_rate, color="0.4", linestyle="-.",
                   label=f"demo's lr {contenders[name].learning_rate:g}")
        ax.legend(fontsize="small")
        print(f"| {name} | {rates['demo']:g} | {result.suggestion:.3g} | "
              f"{result.stop_lr:.3g} | {before:.3f} | "
              + " / ".join(f"{after[k]:.4g}" for k in rates) + " |")
    finder_png = args.out / "lr_finder.png"
    figure.savefig(finder_png, dpi=110)
    print(f"\nfigure: {finder_png}")
    return results


if __name__ == "__main__":
    main()
