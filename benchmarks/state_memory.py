"""Adam's state formats and gradient accumulation: state bytes, step time and compiled memory.

A sibling of ``adam_vs_optax.py`` (same trees, same starting values and gradients, same jitted
step with params and state donated; its helpers are imported from there). Rows, each on each
tree:

- ``gc-f32``, ``gc-bf16-mu``, ``gc-bf16``, ``gc-8bit``: ``gradchain.adam`` with float32
  moments, a bfloat16 first moment, both moments in bfloat16, both in 8 bits
  (``gradchain.quantized()``);
- ``optax-f32``, ``optax-bf16-mu``: ``optax.adam`` and ``optax.adam(mu_dtype=bfloat16)`` (Optax
  has no option for the second moment's dtype);
- ``gc-multisteps``, ``gc-multisteps-8bit``, ``optax-multisteps``: ``gradchain.MultiSteps`` (its
  float32 accumulator) around float32- or 8-bit-moment Adam, and ``optax.MultiSteps``, with
  ``k = --every-k`` micro-batches per Adam step.

Columns: state bytes per parameter (the arrays of ``init``'s state), the median time of one call
of the step (rounds alternate the rows, as in ``adam_vs_optax.py``; an accumulation row's call is
a micro-step: use ``--steps-per-round`` a multiple of ``k`` so that every round holds the same
number of Adam steps), and XLA's memory analysis of the compiled step
(``compiled.memory_analysis()``): its arguments (params, state, gradients), outputs (new params
and state), the part of the outputs aliased to donated arguments (written in place), and
temporaries; ``peak`` = arguments + outputs - aliased + temporaries, the most the step can hold
at once. ``max |dp|``: the largest difference of the final params from ``gc-f32``'s
(``gc-multisteps``'s for the accumulation rows), a check that all ran the same Adam.

    python benchmarks/state_memory.py [--trees gpt2,single] [--rounds 10] [--json PATH]
    # a quick run on shrunken trees (what BUILD.md reports from the shared CPU machine)
    python benchmarks/state_memory.py --gpt2-layers 2 --gpt2-width 256 --single-size 1000000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

import gradchain
from adam_vs_optax import (LEARNING_RATE, PARAMS_SEED, GRADS_SEED, TREES, Contender,
                           device_line, device_report, lower_and_compile, make_step,
                           max_abs_difference, memory_figures, random_tree, round_timer, save,
                           summary, time_rounds, tree_bytes, tree_shapes, warm_up)

EIGHT_BIT = gradchain.quantized()


class Row(NamedTuple):
    contender: Contender
    reference: str  # the row whose final params this one's are compared with


def rows(every_k: int) -> list[Row]:
    gc_adam, bf16 = gradchain.adam, jnp.bfloat16
    gc_apply, optax_apply = gradchain.apply_updates, optax.apply_updates
    return [
        Row(Contender("gc-f32", gc_adam(LEARNING_RATE), gc_apply), "gc-f32"),
        Row(Contender("gc-bf16-mu", gc_adam(LEARNING_RATE, mu_dtype=bf16), gc_apply), "gc-f32"),
        Row(Contender("gc-bf16", gc_adam(LEARNING_RATE, mu_dtype=bf16, nu_dtype=bf16),
                      gc_apply), "gc-f32"),
        Row(Contender("gc-8bit", gc_adam(LEARNING_RATE, mu_dtype=EIGHT_BIT, nu_dtype=EIGHT_BIT),
                      gc_apply), "gc-f32"),
        Row(Contender("optax-f32", optax.adam(LEARNING_RATE), optax_apply), "gc-f32"),
        Row(Contender("optax-bf16-mu", optax.adam(LEARNING_RATE, mu_dtype=bf16), optax_apply),
            "gc-f32"),
        Row(Contender("gc-multisteps", gradchain.MultiSteps(gc_adam(LEARNING_RATE), every_k),
                      gc_apply), "gc-multisteps"),
        Row(Contender("gc-multisteps-8bit", gradchain.MultiSteps(
            gc_adam(LEARNING_RATE, mu_dtype=EIGHT_BIT, nu_dtype=EIGHT_BIT), every_k), gc_apply),
            "gc-multisteps"),
        Row(Contender("optax-multisteps", optax.MultiSteps(optax.adam(LEARNING_RATE), every_k),
                      optax_apply), "gc-multisteps"),
    ]


def runner(contender: Contender, shapes: dict, grads, steps: int):
    params = random_tree(shapes, PARAMS_SEED)
    state = contender.tx.init(params)
    entry = {"state_bytes": tree_bytes(state)}
    compiled, times = lower_and_compile(make_step(contender), (params, state, grads),
                                        f"  {contender.name}")
    entry.update(times, memory=memory_figures(compiled))
    carry = [params, state]

    def step_once():
        carry[:] = compiled(carry[0], carry[1], grads)

    return round_timer(step_once, lambda: jax.block_until_ready(carry), steps), entry, carry


def benchmark_tree(name: str, shapes: dict, args) -> dict:
    grads = random_tree(shapes, GRADS_SEED)
    n_params = sum(g.size for g in jax.tree.leaves(grads))
    print(f"\n[{name}] {len(jax.tree.leaves(grads)):,} leaves, {n_params:,} parameters",
          flush=True)
    table = rows(args.every_k)
    runs, result, carries = {}, {"params": n_params, "rows": {}}, {}
    for row in table:
        run, entry, carries[row.contender.name] = runner(row.contender, shapes, grads,
                                                         args.steps_per_round)
        entry["first_round_s"] = run()
        runs[row.contender.name] = run
        result["rows"][row.contender.name] = entry
    times = time_rounds(runs, args.rounds, name)
    for row in table:
        entry = result["rows"][row.contender.name]
        entry["step"] = summary(times[row.contender.name])
        entry["state_bytes_per_param"] = entry["state_bytes"] / n_params
        entry["max_abs_param_difference"] = float(max(
            max_abs_difference(a, b) for a, b in zip(
                jax.tree.leaves(carries[row.reference][0]),
                jax.tree.leaves(carries[row.contender.name][0]))))
        entry["reference"] = row.reference
    print_rows(name, result, header=True)
    return result


HEADER = (f"{'tree':<7} {'row':<19} {'state B/p':>9} {'step ms':>9} {'args MB':>9} "
          f"{'out MB':>9} {'alias MB':>9} {'temp MB':>9} {'peak MB':>9} {'max |dp|':>9}")


def print_rows(tree: str, result: dict, header: bool = False) -> None:
    if header:
        print(HEADER + "\n" + "-" * len(HEADER))
    for name, e in result["rows"].items():
        memory = e["memory"]
        columns = " ".join(f"{memory[k] / 1e6:>9.2f}" if k in memory else f"{'-':>9}"
                           for k in ("arguments", "outputs", "aliased", "temporaries", "peak"))
        print(f"{tree:<7} {name:<19} {e['state_bytes_per_param']:>9.3f} "
              f"{1e3 * e['step']['median_s']:>9.3f} {columns} "
              f"{e['max_abs_param_difference']:>9.2e}", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default="gpt2,single",
                        help="comma-separated subset of " + ",".join(TREES))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps-per-round", type=int, default=4)
    parser.add_argument("--every-k", type=int, default=4,
                        help="micro-batches per Adam step of the MultiSteps rows (default 4)")
    parser.add_argument("--json", type=Path, help="save all figures here")
    parser.add_argument("--gpt2-layers", type=int, default=12)
    parser.add_argument("--gpt2-width", type=int, default=768)
    parser.add_argument("--small-leaves", type=int, default=5000)
    parser.add_argument("--single-size", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    args.trees = [t for t in args.trees.split(",") if t]
    unknown = set(args.trees) - set(TREES)
    if unknown:
        parser.error(f"unknown trees {sorted(unknown)}; choose from {', '.join(TREES)}")
    if min(args.rounds, args.steps_per_round, args.every_k) < 1:
        parser.error("--rounds, --steps-per-round and --every-k must be at least 1")
    return args


def main(argv=None) -> None:
    start = time.perf_counter()
    args = parse_args(argv)
    devices = device_report(None)
    print(device_line(devices), flush=True)
    warm_up()
    report = {"devices": devices, "settings": {k: (str(v) if isinstance(v, Path) else v)
                                               for k, v in vars(args).items()}, "trees": {}}
    for name in args.trees:
        report["trees"][name] = benchmark_tree(name, tree_shapes(name, args), args)
        save(report, args.json)
    print(f"\n{device_line(devices)}; step: median of {args.rounds} rounds x "
          f"{args.steps_per_round} calls; MB = 1e6 bytes of XLA's memory analysis")
    print(HEADER + "\n" + "-" * len(HEADER))
    for name, result in report["trees"].items():
        print_rows(name, result)
    print(f"\ndone in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
