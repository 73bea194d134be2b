"""Classic optimizers side by side: a small Flax MLP on scikit-learn's handwritten digits.

The experiment of the lecture notes (SGD, momentum, Nesterov, Adagrad, RMSProp, Adadelta,
Adam, AdamW, AMSGrad on one network), with every optimizer a gradchain chain. Each optimizer
trains the same network from the same initial weights on the same mini-batches; the script
prints final training loss, test accuracy and wall time per optimizer and draws the
training-loss curves.

    python examples/demo.py [--epochs 30] [--out examples/out] [--optimizers adam sgd ...]

To compare another optimizer, add one row to ``OPTIMIZERS``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from flax import nnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

import gradchain

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class Contender(NamedTuple):
    """One row of the comparison: a name, its learning rate, how to build the optimizer, and
    the family it is drawn with (one panel of the figure per family)."""

    name: str
    learning_rate: float
    build: Callable[[float], gradchain.GradientTransformation]
    family: str = ""
    evaluate_at: Optional[Callable] = None  # (opt_state, params) -> the params to test with


def family(title: str, *contenders: Contender) -> tuple[Contender, ...]:
    """``contenders``, each marked as one of the family ``title``."""
    return tuple(c._replace(family=title) for c in contenders)


def kernels(params):
    """True for the weight matrices, False for biases: LARS' and LAMB's usual exclusions."""
    return jax.tree.map(lambda p: p.ndim > 1, params)


EIGHT_BIT = gradchain.quantized(min_size=0)

# Learning rates are each family's usual starting point. On this small, easily fitted set every
# one still trains smoothly at 3x its rate (and fits faster), so the table compares behaviour at
# sensible settings, not tuned optimizers.
OPTIMIZERS: tuple[Contender, ...] = (*family(
    "the notes: SGD to AMSGrad",
    Contender("sgd", 0.1, gradchain.sgd),
    Contender("momentum", 0.02, lambda lr: gradchain.sgd(lr, momentum=0.9)),
    Contender("nesterov", 0.02, lambda lr: gradchain.sgd(lr, momentum=0.9, nesterov=True)),
    Contender("adagrad", 0.05, gradchain.adagrad),
    Contender("rmsprop", 1e-3, gradchain.rmsprop),
    Contender("adadelta", 1.0, gradchain.adadelta),
    Contender("adam", 3e-3, gradchain.adam),
    Contender("adamw", 3e-3, lambda lr: gradchain.adamw(lr, weight_decay=1e-2)),
    Contender("amsgrad", 3e-3, gradchain.amsgrad),
    # Adam with both moments in 8 bits; min_size=0 quantizes every leaf (by default leaves under
    # 4,096 elements, here all but the 64x64 kernel, would keep float32 moments).
    Contender("adam(8-bit)", 3e-3, lambda lr: gradchain.adam(lr, mu_dtype=EIGHT_BIT,
                                                             nu_dtype=EIGHT_BIT)),
), *family(
    "the notes: second half",
    # The notes' second half. AdaBound's bounds close towards SGD's rate final_lr = 0.1; SWATS
    # switches to SGD once its rate estimate is within 1e-3 of the step's projected rate (~0.2
    # here; the paper's 1e-9 never triggers with mini-batch noise); LARS and LAMB leave biases
    # out of the trust ratio and the decay.
    Contender("adabound", 3e-3, lambda lr: gradchain.adabound(lr, final_lr=0.1)),
    Contender("amsbound", 3e-3, lambda lr: gradchain.amsbound(lr, final_lr=0.1)),
    Contender("swats", 3e-3, lambda lr: gradchain.swats(lr, tolerance=1e-3)),
    Contender("radam", 3e-3, gradchain.radam),
    Contender("nadam", 3e-3, gradchain.nadam),
    Contender("lookahead(adam)", 3e-3, lambda lr: gradchain.lookahead(gradchain.adam(lr))),
    Contender("noisy_sgd", 0.1, lambda lr: gradchain.noisy_sgd(lr, eta=0.01, key=0)),
    Contender("sgdw", 0.02, lambda lr: gradchain.sgdw(lr, momentum=0.9, weight_decay=1e-2)),
    Contender("lars", 2.0, lambda lr: gradchain.lars(lr, weight_decay=1e-4,
                                                     weight_decay_mask=kernels,
                                                     trust_ratio_mask=kernels)),
    Contender("lamb", 3e-3, lambda lr: gradchain.lamb(lr, weight_decay=1e-2, mask=kernels,
                                                     trust_ratio_mask=kernels)),
), *family(
    # Optax's sign-based and memory-light optimizers. A sign step moves every weight by the
    # full rate, so these run at a third of Adam's rate (Lion's authors: 3-10x smaller).
    "sign and memory-light",
    Contender("lion", 1e-3, lambda lr: gradchain.lion(lr, weight_decay=0.0)),
    Contender("sign_sgd", 1e-3, gradchain.sign_sgd),
    Contender("signum", 1e-3, gradchain.signum),
    # Rprop is a full-batch method: mini-batch noise flips gradient signs and keeps its step
    # sizes small, so it is capped low here.
    Contender("rprop", 1e-3, lambda lr: gradchain.rprop(lr, max_step_size=1e-3)),
    Contender("fromage", 1e-2, gradchain.fromage),
    Contender("optimistic_gd", 0.05, gradchain.optimistic_gradient_descent),
), *family(
    "the Adam family",
    Contender("adabelief", 3e-3, gradchain.adabelief),
    Contender("adan", 3e-3, gradchain.adan),
    Contender("adamax", 3e-3, gradchain.adamax),
    Contender("adamaxw", 3e-3, lambda lr: gradchain.adamaxw(lr, weight_decay=1e-2)),
    Contender("yogi", 1e-2, gradchain.yogi),
    Contender("nadamw", 3e-3, lambda lr: gradchain.nadamw(lr, weight_decay=1e-2)),
    Contender("novograd", 1e-2, gradchain.novograd),
    Contender("adopt", 3e-3, gradchain.adopt),
    Contender("ademamix", 3e-3, gradchain.ademamix),
    # Its momentum is a sum (no 1 - b1 factor): about 1/(1 - b1) = 100 times Adam's step.
    Contender("simplified_ademamix", 1e-5, gradchain.simplified_ademamix),
    Contender("madgrad", 1e-2, gradchain.madgrad),
), *family(
    # The network's weight matrices are small, so Adafactor factors every matrix here (its
    # default leaves those under 128 rows or columns unfactored); Muon orthogonalizes both
    # kernels and gives the biases AdamW.
    "factored and matrix-wise",
    Contender("adafactor", 1e-2, lambda lr: gradchain.adafactor(lr, min_dim_size_to_factor=8)),
    Contender("muon", 0.02, gradchain.muon),
    Contender("soap", 3e-3, gradchain.soap),
    Contender("shampoo", 3e-3, gradchain.shampoo),
), *family(
    # No schedule to tune, and for the learning-rate-free ones no rate: their defaults (1.0
    # multiplies the rate they estimate). The curves are of the params trained on; schedule-free
    # methods evaluate at schedule_free_eval_params (the test accuracy uses them).
    "schedule-free and learning-rate-free",
    Contender("schedule_free_adamw", 3e-3, gradchain.schedule_free_adamw,
              evaluate_at=gradchain.schedule_free_eval_params),
    Contender("schedule_free_sgd", 0.1, gradchain.schedule_free_sgd,
              evaluate_at=gradchain.schedule_free_eval_params),
    Contender("prodigy", 1.0, gradchain.prodigy),
    Contender("dadapt_adamw", 1.0, gradchain.dadapt_adamw),
    Contender("dog", 1.0, gradchain.dog),
    # DoWG's distance estimate grows without bound on this noisy problem at the full rate.
    Contender("dowg", 0.1, gradchain.dowg),
    Contender("cocob", 1.0, gradchain.cocob),
    Contender("mechanize(adam)", 3e-3, lambda lr: gradchain.mechanize(gradchain.adam(lr))),
))


class Digits(NamedTuple):
    """Standardised 8x8 digit images (64 features) and their labels 0-9."""

    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array


class Result(NamedTuple):
    """What one optimizer achieved. ``train_losses[i]``: loss on the whole training set after
    ``i`` steps (index 0: before training)."""

    name: str
    learning_rate: float
    train_losses: np.ndarray
    steps_per_epoch: int
    test_accuracy: float
    compile_seconds: float
    train_seconds: float


class MLP(nnx.Module):
    """64 -> hidden -> 10 perceptron with a ReLU."""

    def __init__(self, hidden: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, hidden, rngs=rngs)
        self.logits = nnx.Linear(hidden, 10, rngs=rngs)

    def __call__(self, x):
        return self.logits(jax.nn.relu(self.hidden(x)))


def load_data(seed: int = 0, test_fraction: float = 0.2) -> Digits:
    """The 1,797 bundled digits, split (stratified) and standardised on the training part."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(x_train)
    return Digits(jnp.asarray(scaler.transform(x_train), jnp.float32),
                  jnp.asarray(y_train, jnp.int32),
                  jnp.asarray(scaler.transform(x_test), jnp.float32),
                  jnp.asarray(y_test, jnp.int32))


def cross_entropy(model: MLP, x, y):
    """Mean softmax cross-entropy of the model's logits against integer labels."""
    log_probs = jax.nn.log_softmax(model(x))
    return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))


def accuracy(model: MLP, x, y):
    """Fraction of ``x`` classified as ``y``."""
    return jnp.mean(jnp.argmax(model(x), axis=1) == y)


def make_epoch(graphdef, batch_size: int):
    """One epoch as a pure function ``(state, key, x, y) -> (state, losses)``.

    The training set is shuffled with ``key`` and cut into ``len(x) // batch_size`` batches
    (the few left over are dropped, different ones each epoch); ``lax.scan`` runs the steps.
    ``losses[i]`` is the loss on all of ``x`` after step ``i``.
    """

    def run_epoch(state, key, x, y):
        n_batches = x.shape[0] // batch_size
        order = jax.random.permutation(key, x.shape[0])[:n_batches * batch_size]

        def step(state, batch):
            model, optimizer = nnx.merge(graphdef, state)
            grads = nnx.grad(cross_entropy)(model, x[batch], y[batch])
            optimizer.update(model, grads)
            return nnx.state((model, optimizer)), cross_entropy(model, x, y)

        return jax.lax.scan(step, state, order.reshape(n_batches, batch_size))

    return run_epoch


def train(contender: Contender, data: Digits, *, epochs: int, batch_size: int = 32,
          hidden: int = 64, seed: int = 0, progress: bool = True) -> Result:
    """Train a fresh MLP with ``contender``'s optimizer; every contender sees the same
    initial weights (``seed``) and the same sequence of mini-batches."""
    model = MLP(hidden, rngs=nnx.Rngs(seed))
    optimizer = nnx.Optimizer(model, contender.build(contender.learning_rate), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    keys = jax.random.split(jax.random.key(seed), epochs)

    bar = tqdm(total=epochs, desc=f"{contender.name:>10}", unit="epoch", leave=True,
               disable=not progress, dynamic_ncols=True)
    bar.set_postfix_str("compiling")
    start = time.perf_counter()
    run_epoch = jax.jit(make_epoch(graphdef, batch_size)).lower(
        state, keys[0], data.x_train, data.y_train).compile()
    compile_seconds = time.perf_counter() - start
    bar.reset()

    losses = [np.asarray([cross_entropy(model, data.x_train, data.y_train)])]
    start = time.perf_counter()
    for key in keys:
        state, epoch_losses = run_epoch(state, key, data.x_train, data.y_train)
        losses.append(np.asarray(epoch_losses))
        bar.set_postfix(loss=f"{losses[-1][-1]:.4f}", refresh=False)
        bar.update()
    train_seconds = time.perf_counter() - start
    bar.close()

    model, optimizer = nnx.merge(graphdef, state)
    if contender.evaluate_at is not None:
        nnx.update(model, contender.evaluate_at(optimizer.opt_state,
                                                nnx.state(model, nnx.Param)))
    return Result(contender.name, contender.learning_rate, np.concatenate(losses),
                  len(data.y_train) // batch_size,
                  float(accuracy(model, data.x_test, data.y_test)), compile_seconds,
                  train_seconds)


def format_table(results: Sequence[Result]) -> str:
    """A Markdown table of the results, one row per optimizer."""
    lines = ["| optimizer | learning rate | final train loss | test accuracy | train s | "
             "compile s |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.name} | {r.learning_rate:g} | {r.train_losses[-1]:.4f} | "
              f"{100 * r.test_accuracy:.2f}% | {r.train_seconds:.2f} | "
              f"{r.compile_seconds:.2f} |" for r in results]
    return "\n".join(lines)


def plot_losses(results: Sequence[Result], families: Sequence[str], path: Path, *,
                batch_size: int) -> None:
    """Training-loss curves (log scale) as small multiples: one panel per family (``families[i]``
    is the family of ``results[i]``), the same axes in every panel, written to ``path``. Adam,
    when run, is drawn in grey in the other panels as the common reference."""
    titles = list(dict.fromkeys(families))
    reference = next((r for r in results if r.name == "adam"), None)
    columns = min(3, len(titles))
    rows = -(-len(titles) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.9 * rows), sharex=True,
                             sharey=True, layout="constrained", squeeze=False)
    for ax, title in zip(axes.flat, titles):
        members = [r for r, f in zip(results, families) if f == title]
        if reference is not None and reference not in members:
            ax.plot(np.arange(len(reference.train_losses)) / reference.steps_per_epoch,
                    reference.train_losses, color="0.6", linewidth=2.5, alpha=0.6,
                    label=f"adam ({reference.learning_rate:g}), reference")
        colors = itertools.cycle(plt.get_cmap("tab10").colors)
        styles = itertools.cycle(["-", "--", "-.", ":"])
        markers = itertools.cycle("osD^vP*Xh<>p")
        for index, (result, color, style, marker) in enumerate(zip(members, colors, styles,
                                                                   markers)):
            steps = len(result.train_losses)
            every = max(1, steps // 6)
            offset = index * every // len(members)
            ax.plot(np.arange(steps) / result.steps_per_epoch, result.train_losses, style,
                    color=color, linewidth=1.4, marker=marker, markersize=4,
                    markevery=(offset, every),
                    label=f"{result.name} ({result.learning_rate:g})")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="lower left")
    for ax in axes.flat[len(titles):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("training cross-entropy")
    fig.suptitle(f"gradchain optimizers: MLP on scikit-learn digits (batch {batch_size}; "
                 "learning rate in brackets)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    names = [c.name for c in OPTIMIZERS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs per optimizer")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out",
                        help="folder for the figure (created if missing)")
    parser.add_argument("--optimizers", nargs="+", choices=names, default=names,
                        metavar="NAME", help=f"subset to run, from: {' '.join(names)}")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    data = load_data(args.seed)
    chosen = [c for c in OPTIMIZERS if c.name in args.optimizers]
    start = time.perf_counter()
    results = [train(c, data, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
               for c in chosen]
    total = time.perf_counter() - start
    print()
    print(format_table(results))
    print(f"\n{len(results)} optimizers x {args.epochs} epochs: {total:.1f} s in all "
          f"(train {len(data.y_train)}, test {len(data.y_test)} digits)")
    args.out.mkdir(parents=True, exist_ok=True)
    figure = args.out / "demo_loss.png"
    plot_losses(results, [c.family for c in chosen], figure, batch_size=args.batch_size)
    print(f"figure: {figure}")
    return results


if __name__ == "__main__":
    main()
