"""Count the kernels of the compiled Adam step (gradchain vs Optax) and save the optimized HLO.

The step ``(params, state, grads) -> (params, state)`` is compiled for one tree on JAX's default
backend; the instructions of its ENTRY computation are counted by opcode (on a GPU each
``fusion``, ``custom-call`` and ``copy`` there is a kernel launch) and the optimized HLO text is
written to ``--out`` for reading. Step times are medians of ``--rounds`` rounds of ten steps.

    python benchmarks/hlo_kernels.py --size 1000000 --leaves 1 --out /tmp/hlo
"""

from __future__ import annotations

import argparse
import collections
import re
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradchain

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
    keys = jax.random.split(jax.random.key(0), 2 * args.leaves)
    params = {f"w{i}": jax.random.normal(keys[i], (args.size,), jnp.float32)
              for i in range(args.leaves)}
    grads = {f"w{i}": jax.random.normal(keys[args.leaves + i], (args.size,), jnp.float32)
             for i in range(args.leaves)}
    print(f"{jax.devices()[0].device_kind}: {args.leaves} leaves of {args.size:,}", flush=True)
    for name, tx, apply in (("gradchain", gradchain.adam(1e-3), gradchain.apply_updates),
                            ("optax", optax.adam(1e-3), optax.apply_updates)):
        def step(p, s, g, tx=tx, apply=apply):
            u, s = tx.update(g, s, p)
            return apply(p, u), s
        p = jax.tree.map(jnp.copy, params)
        s = tx.init(p)
        compiled = jax.jit(step, donate_argnums=(0, 1)).lower(p, s, grads).compile()
        text = compiled.as_text()
        (args.out / f"{name}_{args.leaves}x{args.size}.hlo.txt").write_text(text)
        n_args = len(jax.tree.leaves((p, s, grads)))
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for _ in range(10):
                p, s = compiled(p, s, grads)
            jax.block_until_ready((p, s))
            times.append((time.perf_counter() - start) / 10)
        print(f"{name:10s} step {1e3 * np.median(times):8.4f} ms  arguments {n_args:4d}  "
              f"entry ops {dict(entry_opcodes(text).most_common())}", flush=True)


if __name__ == "__main__":
    main()
