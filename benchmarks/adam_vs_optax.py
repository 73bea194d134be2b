"""gradchain's ``adam`` against Optax's ``adam``: step time, compile time, memory bandwidth.

Both optimizers run in the same process on the same parameter trees (float32):

- ``gpt2``: a GPT-2-small-shaped tree (token and position embeddings, 12 blocks of layer norms,
  attention and MLP kernels and biases, a final layer norm): 124,439,808 parameters in 148 leaves;
- ``small``: 5,000 leaves of shape 16x8 (many small leaves: dispatch and per-leaf overhead);
- ``single``: one leaf of 1,000,000 parameters.

For each tree and optimizer the step ``(params, state, grads) -> (params, state)`` (``update``
then ``apply_updates``) is jitted with params and state donated and compiled ahead of time;
lowering and compiling are timed separately. Step times are then taken in rounds that alternate
the two optimizers (gradchain, Optax, gradchain, Optax, ...), so both see the same machine noise;
each round runs ``--steps-per-round`` steps back to back and waits for the result. Adam moves 28
bytes per float32 parameter per step (reads p, g, m, v; writes p, m, v); the achieved rate is
compared with the memory bandwidth of a jitted streaming ``a*s + b`` measured at the start of the
run (12 bytes per element: reads a and b, writes the result into a's donated buffer).

    python benchmarks/adam_vs_optax.py [--trees gpt2,small,single] [--rounds 20]
        [--steps-per-round 5] [--json benchmarks/out/adam_vs_optax.json]

The full run needs about 4 GB of memory (the GPT-2 tree: params, two moments and the shared
gradients for each optimizer) and several minutes, most of it compiling Optax's step for the
5,000-leaf tree. ``--gpt2-layers``, ``--gpt2-width``, ``--small-leaves`` and ``--single-size``
shrink the trees for a quick check of the script itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

import gradchain

ADAM_BYTES_PER_PARAM = 28   # float32: read p, g, m, v (16 bytes); write p, m, v (12 bytes)
STREAM_BYTES_PER_ELEMENT = 12  # float32: read a, b; write out
LEARNING_RATE = 1e-3
TREES = ("gpt2", "small", "single")


class Contender(NamedTuple):
    """An optimizer under test and the ``apply_updates`` of its own library."""

    name: str
    tx: optax.GradientTransformation
    apply_updates: Callable


CONTENDERS = (
    Contender("gradchain", gradchain.adam(LEARNING_RATE), gradchain.apply_updates),
    Contender("optax", optax.adam(LEARNING_RATE), optax.apply_updates),
)


def gpt2_shapes(layers: int, width: int, vocab: int = 50257, context: int = 1024) -> dict:
    """Parameter shapes of GPT-2 small (Flax naming), as a nested dict of shape tuples."""
    def dense(n_in, n_out):
        return {"kernel": (n_in, n_out), "bias": (n_out,)}

    def layer_norm():
        return {"scale": (width,), "bias": (width,)}

    block = {"ln_1": layer_norm(),
             "attn": {"c_attn": dense(width, 3 * width), "c_proj": dense(width, width)},
             "ln_2": layer_norm(),
             "mlp": {"c_fc": dense(width, 4 * width), "c_proj": dense(4 * width, width)}}
    return {"wte": {"embedding": (vocab, width)}, "wpe": {"embedding": (context, width)},
            "h": {str(i): block for i in range(layers)}, "ln_f": layer_norm()}


def tree_shapes(name: str, args) -> dict:
    if name == "gpt2":
        return gpt2_shapes(args.gpt2_layers, args.gpt2_width)
    if name == "small":
        return {f"leaf_{i:05d}": (16, 8) for i in range(args.small_leaves)}
    return {"w": (args.single_size,)}


def is_shape(x) -> bool:
    return isinstance(x, tuple)


def random_tree(shapes: dict, rng: np.random.Generator) -> dict:
    """Standard-normal float32 arrays of the given shapes, each in its own device buffer."""
    return jax.tree.map(lambda s: jnp.array(rng.standard_normal(s, dtype=np.float32)), shapes,
                        is_leaf=is_shape)


def tree_bytes(tree) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(tree))


@jax.jit
def max_abs_difference(a, b):
    """``max |a - b|`` of one leaf, fused (no temporary the size of the leaf)."""
    return jnp.max(jnp.abs(a - b))


def make_step(contender: Contender) -> Callable:
    def step(params, state, grads):
        updates, state = contender.tx.update(grads, state, params)
        return contender.apply_updates(params, updates), state
    return jax.jit(step, donate_argnums=(0, 1))


def time_rounds(runners: dict, rounds: int, desc: str) -> dict:
    """Per-step seconds of each runner, one figure per round; runners alternate within a round."""
    times = {name: [] for name in runners}
    for _ in tqdm(range(rounds), desc=desc, file=sys.stderr, leave=False):
        for name, run in runners.items():
            times[name].append(run())
    return times


def summary(seconds) -> dict:
    s = np.asarray(seconds)
    p25, p50, p75 = np.percentile(s, [25, 50, 75])
    return {"median_s": float(p50), "p25_s": float(p25), "p75_s": float(p75),
            "min_s": float(s.min())}


def measure_bandwidth(elements: int, rounds: int, steps: int) -> dict:
    """Bytes per second of a jitted ``a*s + b`` over float32 arrays, ``a`` donated."""
    stream = jax.jit(lambda a, b, s: a * s + b, donate_argnums=0)
    a = jnp.ones((elements,), jnp.float32)
    b = jnp.ones((elements,), jnp.float32)
    s = jnp.float32(0.5)
    compiled = stream.lower(a, b, s).compile()
    box = [compiled(a, b, s)]

    def run():
        start = time.perf_counter()
        for _ in range(steps):
            box[0] = compiled(box[0], b, s)
        box[0].block_until_ready()
        return (time.perf_counter() - start) / steps

    run()
    per_step = time_rounds({"stream": run}, rounds, "bandwidth")["stream"]
    stats = summary(per_step)
    nbytes = STREAM_BYTES_PER_ELEMENT * elements
    return {"elements": elements, "bytes_per_step": nbytes, "step": stats,
            "median_bytes_per_s": nbytes / stats["median_s"],
            "best_bytes_per_s": nbytes / stats["min_s"], "per_round_s": per_step}


def warm_up() -> None:
    """Lower and compile both steps once on a tiny tree, so that JAX's one-time costs (first
    tracing of each primitive, backend start-up) are not charged to whichever optimizer is
    compiled first."""
    tree = {"w": jnp.ones((8,), jnp.float32)}
    for contender in CONTENDERS:
        make_step(contender).lower(tree, contender.tx.init(tree), tree).compile()


def benchmark_tree(name: str, shapes: dict, args, bandwidth: float) -> dict:
    grads = random_tree(shapes, np.random.default_rng(1))
    n_params = sum(x.size for x in jax.tree.leaves(grads))
    n_leaves = len(jax.tree.leaves(grads))
    print(f"\n[{name}] {n_leaves:,} leaves, {n_params:,} parameters "
          f"({ADAM_BYTES_PER_PARAM * n_params / 1e9:.3f} GB moved per Adam step)", flush=True)

    compiled, carries, result = {}, {}, {"leaves": n_leaves, "params": n_params}
    for contender in CONTENDERS:
        params = random_tree(shapes, np.random.default_rng(0))  # the same start for both
        state = contender.tx.init(params)
        step = make_step(contender)
        start = time.perf_counter()
        lowered = step.lower(params, state, grads)
        lower_s = time.perf_counter() - start
        print(f"  {contender.name}: lowered in {lower_s:.2f} s, compiling ...", flush=True)
        start = time.perf_counter()
        compiled[contender.name] = lowered.compile()
        compile_s = time.perf_counter() - start
        print(f"  {contender.name}: compiled in {compile_s:.2f} s", flush=True)
        carries[contender.name] = [params, state]
        result[contender.name] = {"lower_s": lower_s, "compile_s": compile_s,
                                  "state_bytes_per_param": tree_bytes(state) / n_params}

    def runner(contender_name):
        fn, carry = compiled[contender_name], carries[contender_name]

        def run():
            start = time.perf_counter()
            for _ in range(args.steps_per_round):
                carry[:] = fn(carry[0], carry[1], grads)
            jax.block_until_ready(carry)
            return (time.perf_counter() - start) / args.steps_per_round
        return run

    runners = {c.name: runner(c.name) for c in CONTENDERS}
    donated = jax.tree.leaves(carries)  # every params and state buffer, of both optimizers
    for run in runners.values():
        run()
    donation = all(x.is_deleted() for x in donated)
    times = time_rounds(runners, args.rounds, name)

    for contender in CONTENDERS:
        entry = result[contender.name]
        entry["step"] = summary(times[contender.name])
        entry["per_round_s"] = times[contender.name]
        entry["bytes_per_s"] = ADAM_BYTES_PER_PARAM * n_params / entry["step"]["median_s"]
        entry["bandwidth_fraction"] = entry["bytes_per_s"] / bandwidth
    ours, theirs = (result[c.name] for c in CONTENDERS)
    paired = np.asarray(times["gradchain"]) / np.asarray(times["optax"])
    result["step_ratio"] = dict(zip(("p25", "median", "p75"),
                                    map(float, np.percentile(paired, [25, 50, 75]))))
    result["ratio_of_median_steps"] = ours["step"]["median_s"] / theirs["step"]["median_s"]
    result["lower_ratio"] = ours["lower_s"] / theirs["lower_s"]
    result["compile_ratio"] = ours["compile_s"] / theirs["compile_s"]
    result["lower_plus_compile_ratio"] = ((ours["lower_s"] + ours["compile_s"])
                                          / (theirs["lower_s"] + theirs["compile_s"]))
    result["donation_honoured"] = donation
    result["max_abs_param_difference"] = float(max(
        max_abs_difference(a, b) for a, b in zip(jax.tree.leaves(carries["gradchain"][0]),
                                                jax.tree.leaves(carries["optax"][0]))))
    return result


def print_table(results: dict, bandwidth: dict, args) -> None:
    steps = (args.rounds + 1) * args.steps_per_round
    print(f"\nstep time: median [p25-p75] of {args.rounds} rounds x {args.steps_per_round} "
          f"steps; GB/s = {ADAM_BYTES_PER_PARAM} bytes/param / median step; "
          f"%bw = GB/s / streaming bandwidth ({bandwidth['median_bytes_per_s'] / 1e9:.2f} GB/s)")
    header = (f"{'tree':<7} {'optimizer':<10} {'step ms':>10} {'[p25 - p75]':>19} {'GB/s':>7} "
              f"{'%bw':>5} {'lower s':>8} {'compile s':>9} {'state B/p':>9}")
    print(header)
    print("-" * len(header))
    for tree, r in results.items():
        for contender in CONTENDERS:
            e = r[contender.name]
            s = e["step"]
            spread = f"[{1e3 * s['p25_s']:.3f} - {1e3 * s['p75_s']:.3f}]"
            print(f"{tree:<7} {contender.name:<10} {1e3 * s['median_s']:>10.3f} {spread:>19} "
                  f"{e['bytes_per_s'] / 1e9:>7.2f} {100 * e['bandwidth_fraction']:>4.0f}% "
                  f"{e['lower_s']:>8.2f} {e['compile_s']:>9.2f} "
                  f"{e['state_bytes_per_param']:>9.2f}")
        ratio = r["step_ratio"]
        spread = f"[{ratio['p25']:.3f} - {ratio['p75']:.3f}]"
        print(f"{tree:<7} {'ratio':<10} {ratio['median']:>10.3f} {spread:>19} {'':>7} {'':>5} "
              f"{r['lower_ratio']:>8.3f} {r['compile_ratio']:>9.3f}")
    print("\nratio = gradchain / optax (< 1: gradchain faster); step: median [p25 - p75] of "
          "the per-round ratios (both optimizers ran in the same round).")
    for tree, r in results.items():
        print(f"{tree}: {r['leaves']:,} leaves, {r['params']:,} params; ratio of median steps "
              f"{r['ratio_of_median_steps']:.3f}; lower + compile ratio "
              f"{r['lower_plus_compile_ratio']:.3f}; params after {steps} steps differ by at "
              f"most {r['max_abs_param_difference']:.2e}; donation "
              f"{'honoured' if r['donation_honoured'] else 'NOT honoured'}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default=",".join(TREES),
                        help="comma-separated subset of " + ",".join(TREES))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps-per-round", type=int, default=5)
    parser.add_argument("--json", type=Path, help="save all figures (and raw times) here")
    parser.add_argument("--gpt2-layers", type=int, default=12)
    parser.add_argument("--gpt2-width", type=int, default=768)
    parser.add_argument("--small-leaves", type=int, default=5000)
    parser.add_argument("--single-size", type=int, default=1_000_000)
    parser.add_argument("--stream-elements", type=int, default=1 << 26,
                        help="elements per array of the bandwidth kernel (default 64 Mi: "
                             "768 MiB moved per pass)")
    args = parser.parse_args(argv)
    args.trees = args.trees.split(",")
    unknown = set(args.trees) - set(TREES)
    if unknown:
        parser.error(f"unknown trees {sorted(unknown)}; choose from {', '.join(TREES)}")
    if args.rounds < 1 or args.steps_per_round < 1:
        parser.error("--rounds and --steps-per-round must be at least 1")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    print(f"devices: {jax.devices()}")
    print(f"jax {jax.__version__}, optax {optax.__version__}, gradchain {gradchain.__version__}")
    full = gpt2_shapes(12, 768)
    print(f"GPT-2 small parameter count: "
          f"{sum(int(np.prod(s)) for s in jax.tree.leaves(full, is_leaf=is_shape)):,}")

    bandwidth = measure_bandwidth(args.stream_elements, args.rounds, args.steps_per_round)
    print(f"streaming a*s + b over {args.stream_elements:,} float32 elements: "
          f"{bandwidth['median_bytes_per_s'] / 1e9:.2f} GB/s median, "
          f"{bandwidth['best_bytes_per_s'] / 1e9:.2f} GB/s best")

    warm_up()
    results = {name: benchmark_tree(name, tree_shapes(name, args), args,
                                    bandwidth["median_bytes_per_s"])
               for name in args.trees}
    print_table(results, bandwidth, args)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "devices": [str(d) for d in jax.devices()], "jax": jax.__version__,
            "optax": optax.__version__, "gradchain": gradchain.__version__,
            "settings": {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in vars(args).items()},
            "bandwidth": bandwidth, "trees": results}, indent=2))
        print(f"figures saved to {args.json}")


if __name__ == "__main__":
    main()
