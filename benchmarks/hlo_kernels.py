"""Count the kernels of the compiled Adam step (gradchain vs Optax) and save the optimized HLO.

The step ``(params, state, grads) -> (params, state)`` of ``adam_vs_optax.py`` (params and state
donated) is compiled for one tree on JAX's default backend; the instructions of its ENTRY
computation are counted by opcode (on a GPU each ``fusion``, ``custom-call`` and ``copy`` there is
a kernel launch) and the optimized HLO text is written to ``--out`` for reading. Step times are
medians of ``--rounds`` rounds of ten steps.

    python benchmarks/hlo_kernels.py --size 1000000 --leaves 1 --out /tmp/hlo
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

import jax
import numpy as np

from adam_vs_optax import CONTENDERS, GRADS_SEED, PARAMS_SEED, make_step, random_tree, round_timer

OPCODE = re.compile(r"\b([a-z][a-z0-9\-]*)\(")


def entry_opcodes(hlo_text: str) -> collections.Counter:
    entry = hlo_text[hlo_text.index("\nENTRY"):]
    body = entry[:entry.index("\n}")]
    counts = collections.Counter()
    for line in body.splitlines():
        if " = " in line:
            match = OPCODE.search(line.split(" = ", 1)[1])
            if match:
                counts[match.group(1)] += 1
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="parameters per leaf")
    parser.add_argument("--leaves", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/hlo"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shapes = {f"w{i}": (args.size,) for i in range(args.leaves)}
    grads = random_tree(shapes, GRADS_SEED)
    print(f"{jax.devices()[0].device_kind}: {args.leaves} leaves of {args.size:,}", flush=True)
    for contender in CONTENDERS:
        params = random_tree(shapes, PARAMS_SEED)
        state = contender.tx.init(params)
        compiled = make_step(contender).lower(params, state, grads).compile()
        text = compiled.as_text()
        (args.out / f"{contender.name}_{args.leaves}x{args.size}.hlo.txt").write_text(text)
        n_args = len(jax.tree.leaves((params, state, grads)))
        carry = [params, state]

        def step_once():
            carry[:] = compiled(carry[0], carry[1], grads)

        timer = round_timer(step_once, lambda: jax.block_until_ready(carry), 10)
        times = [timer() for _ in range(args.rounds)]
        print(f"{contender.name:10s} step {1e3 * np.median(times):8.4f} ms  arguments "
              f"{n_args:4d}  entry ops {dict(entry_opcodes(text).most_common())}", flush=True)


if __name__ == "__main__":
    main()
