"""Random per-element programs through ``gradchain.one_pass_function`` against XLA, bit by bit.

The one-pass kernel rounds where XLA:CPU's code rounds (``gradchain/execution/cpu_kernels.py``):
it follows XLA's simplifier, its loop fusions and LLVM's contraction of products into fused
multiply-adds. The test suite checks every primitive on special values and every optimizer of
the registry; this script checks compositions nobody wrote by hand. Each program is a random
chain of the kernel's primitives (``+ - * /``, ``max``/``min``, ``neg``, ``abs``, ``sqrt``,
``square``, ``sign``, ``integer_pow``, ``where``, products added to or subtracted from a third
value) over three arrays, two scalars and a few literals; its inputs mix values spread over
twelve orders of magnitude with NaN, ±0, ±inf, subnormals and the largest finite values.

For each dtype it prints how many programs ran, how many came out bit-identical (NaN payloads
aside), and for the others the largest distance in ulps and whether a special value differed
(NaN against a number, an infinity against a finite value, a zero against a non-zero, or the
sign of a zero or an infinity). Usage::

    python benchmarks/one_pass_agreement.py --programs 200 --seed 0
"""

from __future__ import annotations

import argparse
import random
import time

import jax
import jax.numpy as jnp
import numpy as np

import gradchain as gc

LITERALS = (0.5, 2.0, 3.0, 1e-8, 0.999, -1.0, 1.0, 0.0)
BINARY = {"add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": jnp.divide,
          "max": jnp.maximum, "min": jnp.minimum}
UNARY = {"neg": jnp.negative, "abs": jnp.abs, "sqrt": lambda x: jnp.sqrt(jnp.abs(x)),
         "square": jnp.square, "sign": jnp.sign, "pow2": lambda x: x ** 2,
         "pow3": lambda x: x ** 3, "reciprocal": lambda x: 1 / x}


def random_program(seed: int, length: int):
    """A function ``(a, b, c, s, t) -> list of arrays``, the same on every trace."""
    def program(a, b, c, s, t):
        draw = random.Random(seed)
        values, scalars = [a, b, c], [s, t]

        def operand():
            roll = draw.random()
            if roll < 0.8:
                return values[draw.randrange(len(values))]
            return scalars[draw.randrange(2)] if roll < 0.9 else draw.choice(LITERALS)

        for _ in range(length):
            kind = draw.random()
            x = values[-1] if draw.random() < 0.5 else values[draw.randrange(len(values))]
            if kind < 0.55:
                y = operand()
                if draw.random() < 0.5:
                    x, y = y, x
                if np.ndim(x) == 0 and np.ndim(y) == 0:
                    y = values[-1]
                result = BINARY[draw.choice(sorted(BINARY))](x, y)
            elif kind < 0.8:
                result = UNARY[draw.choice(sorted(UNARY))](x)
            elif kind < 0.9:
                y, z = operand(), operand()
                compared = values[draw.randrange(len(values))]
                result = jnp.where(x > compared, y if np.ndim(y) else x * y,
                                   z if np.ndim(z) else x + z)
            else:
                y, z = operand(), operand()
                result = x * y + z if draw.random() < 0.5 else z - x * y
            values.append(jnp.broadcast_to(result, a.shape).astype(a.dtype))
        chosen = draw.sample(range(3, len(values)), k=min(len(values) - 3, draw.randint(1, 3)))
        return [values[k] for k in chosen] + [values[-1]]
    return program


def random_inputs(rng: np.random.Generator, dtype, size: int):
    info = np.finfo(dtype)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info.tiny / 4, -info.tiny / 8,
                        info.max, -info.max, 1.0, -1.0], dtype)
    arrays = []
    for _ in range(3):
        x = (rng.standard_normal(size) * np.exp(rng.standard_normal(size) * 3)).astype(dtype)
        chosen = rng.random(size) < 0.05
        x[chosen] = rng.choice(special, size=int(chosen.sum()))
        arrays.append(x)
    return (*arrays, np.asarray(rng.random() * 0.1, dtype), np.asarray(rng.standard_normal(),
                                                                       dtype))


def ordered(x: np.ndarray) -> np.ndarray:
    """The floats' bits as integers in the order of their values (ulps apart = difference)."""
    bits = x.view(np.int32 if x.dtype == np.float32 else np.int64).astype(np.int64)
    sign = np.int64(np.iinfo(np.int32 if x.dtype == np.float32 else np.int64).min)
    return np.where(bits < 0, sign - bits, bits)


def compare(expected: np.ndarray, got: np.ndarray):
    """(bit-identical, special value differs, largest distance in ulps among finite values)."""
    both_nan = np.isnan(expected) & np.isnan(got)
    same = both_nan | ((expected == got) & (np.signbit(expected) == np.signbit(got)))
    if same.all():
        return True, False, 0
    differ = ~same
    e, g = expected[differ], got[differ]
    special = ((np.isnan(e) != np.isnan(g)) | (np.isinf(e) != np.isinf(g))
               | ((e == 0) != (g == 0)) | (e == g))  # equal as numbers: ±0 or ±inf apart
    finite = np.isfinite(e) & np.isfinite(g)
    ulps = int(np.abs(ordered(e[finite]) - ordered(g[finite])).max()) if finite.any() else 0
    return False, bool(special.any()), ulps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    if "float64" in args.dtypes:
        jax.config.update("jax_enable_x64", True)
    print(f"jax {jax.__version__}, {args.programs} programs per dtype, seed {args.seed}, "
          f"{args.size} elements")
    print(f"{'dtype':8s} {'ran':>5s} {'refused':>8s} {'identical':>10s} {'rounding':>9s} "
          f"{'special':>8s} {'max ulps':>9s} {'seconds':>8s}")
    for dtype in [np.dtype(d).type for d in args.dtypes.split(",")]:
        rng = np.random.default_rng(args.seed)
        start = time.perf_counter()
        ran = refused = identical = rounding = special = worst = 0
        examples = []
        for k in range(args.programs):
            draw = random.Random(args.seed * 1_000_003 + k)
            program = random_program(draw.getrandbits(64), draw.randint(3, 12))
            inputs = random_inputs(rng, dtype, args.size)
            try:
                got = jax.jit(gc.one_pass_function(program, require=True))(*inputs)
            except ValueError:
                refused += 1
                continue
            expected = jax.jit(program)(*inputs)
            ran += 1
            results = [compare(np.asarray(e), np.asarray(g)) for e, g in zip(expected, got)]
            if all(same for same, _, _ in results):
                identical += 1
                continue
            ulps = max(u for _, _, u in results)
            worst = max(worst, ulps)
            if any(s for _, s, _ in results):
                special += 1
            else:
                rounding += 1
            examples.append((k, ulps))
        seconds = time.perf_counter() - start
        print(f"{np.dtype(dtype).name:8s} {ran:5d} {refused:8d} {identical:10d} {rounding:9d} "
              f"{special:8d} {worst:9d} {seconds:8.1f}")
        if examples:
            print("  differing programs (index, ulps): "
                  + ", ".join(f"{k} ({u})" for k, u in examples[:12]))


if __name__ == "__main__":
    main()
