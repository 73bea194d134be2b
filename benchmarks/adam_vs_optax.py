"""gradchain's ``adam`` against Optax's ``adam`` and torch's: step time, compile time, bandwidth.

All optimizers run in the same process on the same parameter trees (float32, the same starting
values and the same gradients):

- ``gpt2``: a GPT-2-small-shaped tree (token and position embeddings, 12 blocks of layer norms,
  attention and MLP kernels and biases, a final layer norm): 124,439,808 parameters in 148 leaves;
- ``small``: 5,000 leaves of shape 16x8 (many small leaves: dispatch and per-leaf overhead);
- ``single``: one leaf of 1,000,000 parameters.

gradchain's ``adam`` runs three ways: as XLA compiles it (``gradchain``), through
``gradchain.one_pass_function`` (``gc-1pass``: one C++ loop per 32 leaves) and under
``gradchain.flatten`` (``gc-flat``: its state one vector per moment, the leaves concatenated).

For each tree and JAX optimizer the step ``(params, state, grads) -> (params, state)``
(``update`` then ``apply_updates``) is jitted with params and state donated and compiled ahead
of time; lowering and compiling are timed separately. When torch is installed,
``torch.optim.Adam(fused=True)`` and ``torch.optim.Adam(foreach=True)`` run on the same trees
with the gradients given through ``.grad`` (``step()`` only; torch has nothing to compile). Step
times are taken in rounds that alternate the optimizers (gradchain, Optax, torch fused, torch
foreach, gradchain, ...), so all see the same machine noise; each round runs
``--steps-per-round`` steps back to back and waits for the device (``block_until_ready``,
``torch.cuda.synchronize``). Adam moves 28 bytes per float32 parameter per step (reads p, g, m,
v; writes p, m, v); the achieved rate is compared with the memory bandwidth of a jitted streaming
``a*s + b`` measured at the start of the run (12 bytes per element: reads a and b, writes the
result into a's donated buffer).

Beside Adam, ``adafactor`` and ``muon`` (gradchain's and Optax's) run on the same trees: their
step times and state bytes per parameter (Adafactor keeps rows + columns per matrix; Muon one
momentum for matrices, Adam's two for the rest).

With ``--compile-share 2000,5000``, after the trees: the compile share of each JAX optimizer on a
chain of tiny dense layers with that many parameter leaves, i.e. (lower + compile of a training
step with the optimizer - that of the gradient alone) / that of the gradient alone.
``--time-limit`` skips what would end past that many seconds from the start.

    python benchmarks/adam_vs_optax.py [--trees gpt2,small,single] [--rounds 20]
        [--steps-per-round 5] [--json benchmarks/out/adam_vs_optax.json] [--no-torch]
        [--compile-share 2000,5000] [--time-limit SECONDS]

It runs on JAX's default backend, and torch on ``cuda`` when torch sees a GPU. The full run
needs 8.4 GB of memory (peak resident) for the JAX optimizers (the GPT-2 tree: params and two
moments for each, the shared gradients, gc-flat's flat vectors), 11.5 GB with torch, and several
minutes, most of it compiling the steps for the 5,000-leaf tree. ``--gpt2-layers``,
``--gpt2-width``, ``--small-leaves`` and ``--single-size`` shrink the trees for a quick check
of the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

# JAX reserves 75% of a GPU's memory when it starts unless told not to; torch's Adam runs on the
# same GPU in this process, so JAX allocates on demand here (a setting given by the caller wins).
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402  (after the allocator setting above)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import gradchain  # noqa: E402
from gradchain.execution import cpu_kernels  # noqa: E402

try:
    from tqdm import tqdm
except ImportError:  # progress bars only; a bare machine may lack tqdm
    def tqdm(iterable, **_):
        return iterable

ADAM_BYTES_PER_PARAM = 28   # float32: read p, g, m, v (16 bytes); write p, m, v (12 bytes)
STREAM_BYTES_PER_ELEMENT = 12  # float32: read a, b; write out
LEARNING_RATE = 1e-3
TREES = ("gpt2", "small", "single")
PARAMS_SEED, GRADS_SEED = 0, 1
REFERENCE = "gradchain"  # gradchain.adam as XLA compiles it
ONE_PASS = "gc-1pass"
FLAT = "gc-flat"  # gradchain.flatten(gradchain.adam): the state as one vector per moment
REFERENCES = (REFERENCE, ONE_PASS, FLAT)  # every ratio row is one of these over another one


class Contender(NamedTuple):
    """A JAX optimizer under test and the ``apply_updates`` of its own library."""

    name: str
    tx: optax.GradientTransformation
    apply_updates: Callable
    one_pass: bool = False  # the step through gradchain.one_pass_function


CONTENDERS = (
    Contender(REFERENCE, gradchain.adam(LEARNING_RATE), gradchain.apply_updates),
    Contender("optax", optax.adam(LEARNING_RATE), optax.apply_updates),
    Contender(ONE_PASS, gradchain.adam(LEARNING_RATE), gradchain.apply_updates, one_pass=True),
    Contender(FLAT, gradchain.flatten(gradchain.adam(LEARNING_RATE)), gradchain.apply_updates),
)


# Why gc-1pass cannot run here, or None: ``one_pass_function`` (with ``require=True``) needs
# JAX's CPU backend and a C++ compiler; elsewhere it would raise, not fall back.
ONE_PASS_LEFT_OUT = cpu_kernels.unavailable()
if ONE_PASS_LEFT_OUT is not None:
    CONTENDERS = tuple(c for c in CONTENDERS if not c.one_pass)
    REFERENCES = tuple(r for r in REFERENCES if r != ONE_PASS)

# Shown beside Adam (step time, state bytes per parameter; no ratios to gradchain's Adam): the
# factored and matrix-wise optimizers, gradchain's and Optax's. Their "GB/s" and "%bw" columns
# count Adam's bytes per parameter.
BESIDE_ADAM = (
    Contender("gc-adafactor", gradchain.adafactor(LEARNING_RATE), gradchain.apply_updates),
    Contender("optax-adafactor", optax.adafactor(LEARNING_RATE), optax.apply_updates),
    Contender("gc-muon", gradchain.muon(LEARNING_RATE), gradchain.apply_updates),
    Contender("optax-muon", optax.contrib.muon(LEARNING_RATE), optax.apply_updates),
)

# torch.optim.Adam's multi-tensor implementations, each with Adam's defaults (betas 0.9, 0.999,
# eps 1e-8, the same as optax.adam and gradchain.adam).
TORCH_ADAMS = (("torch-fused", {"fused": True}), ("torch-foreach", {"foreach": True}))


class TorchEnv(NamedTuple):
    """The lazily imported ``torch`` module and the device its tensors live on."""

    torch: object
    device: object


class Runner(NamedTuple):
    """One optimizer set up on one tree, ready to be timed."""

    run: Callable[[], float]              # one round of steps; returns seconds per step
    entry: dict                           # figures taken while setting it up
    final_params: Callable[[], list]      # its params' leaves, in tree order
    donated: list                         # JAX buffers its first step must consume
    state_bytes: Callable[[], int]        # bytes of optimizer state (after the first step)


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


def chain_model_shapes(leaves: int, width: int) -> dict:
    """A chain of ``leaves / 2`` tiny dense layers (kernel width x width, bias width)."""
    return {f"layer_{i:05d}": {"kernel": (width, width), "bias": (width,)}
            for i in range(leaves // 2)}


def make_chain_loss(layers: int) -> Callable:
    """``mean(tanh(... tanh(x W_0 + b_0) ... W_n + b_n)^2)``: a new function at every call, so
    that no trace or compilation is reused from one measurement to the next."""
    def loss(params, x):
        for i in range(layers):
            layer = params[f"layer_{i:05d}"]
            x = jnp.tanh(x @ layer["kernel"] + layer["bias"])
        return jnp.mean(x ** 2)
    return loss


def is_shape(x) -> bool:
    return isinstance(x, tuple)


def numpy_leaves(shapes: dict, seed: int) -> list:
    """Standard-normal float32 arrays of the given shapes, in tree order."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s, dtype=np.float32)
            for s in jax.tree.leaves(shapes, is_leaf=is_shape)]


def random_tree(shapes: dict, seed: int) -> dict:
    """``numpy_leaves`` as a tree of JAX arrays, each in its own device buffer."""
    return jax.tree.unflatten(jax.tree.structure(shapes, is_leaf=is_shape),
                              [jnp.array(a) for a in numpy_leaves(shapes, seed)])


def tree_bytes(tree) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(tree))


@jax.jit
def max_abs_difference(a, b):
    """``max |a - b|`` of one leaf, fused (no temporary the size of the leaf)."""
    return jnp.max(jnp.abs(a - b))


def adam_step(contender: Contender) -> Callable:
    def step(params, state, grads):
        updates, state = contender.tx.update(grads, state, params)
        return contender.apply_updates(params, updates), state
    if contender.one_pass:
        return gradchain.one_pass_function(step, donate_argnums=(0, 1), require=True)
    return step


def make_step(contender: Contender) -> Callable:
    """The jitted step ``(params, state, grads) -> (params, state)``, params and state donated."""
    return jax.jit(adam_step(contender), donate_argnums=(0, 1))


def make_train_step(contender: Contender, loss: Callable) -> Callable:
    """The jitted training step ``(params, state, x) -> (params, state)``: the gradient of
    ``loss``, then ``adam_step``; params and state donated."""
    step = adam_step(contender)

    def train_step(params, state, x):
        return step(params, state, jax.grad(loss)(params, x))
    return jax.jit(train_step, donate_argnums=(0, 1))


def lower_and_compile(jitted: Callable, args: tuple, label: str | None = None):
    """``jitted.lower(*args).compile()``, each phase timed; ``label`` prints progress."""
    start = time.perf_counter()
    lowered = jitted.lower(*args)
    lower_s = time.perf_counter() - start
    if label:
        print(f"{label}: lowered in {lower_s:.2f} s, compiling ...", flush=True)
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    if label:
        print(f"{label}: compiled in {compile_s:.2f} s", flush=True)
    return compiled, {"lower_s": lower_s, "compile_s": compile_s}


def memory_figures(compiled) -> dict:
    """XLA's memory analysis of a compiled step in bytes: arguments, outputs, the outputs
    aliased to donated arguments, temporaries, and peak = arguments + outputs - aliased +
    temporaries ({} where the backend gives none)."""
    stats = compiled.memory_analysis()
    if stats is None:
        return {}
    figures = {"arguments": stats.argument_size_in_bytes, "outputs": stats.output_size_in_bytes,
               "aliased": stats.alias_size_in_bytes, "temporaries": stats.temp_size_in_bytes}
    figures["peak"] = (figures["arguments"] + figures["outputs"] - figures["aliased"]
                       + figures["temporaries"])
    return figures


def round_timer(step_once: Callable, wait: Callable, steps: int) -> Callable[[], float]:
    """A round: ``steps`` calls of ``step_once`` back to back, then ``wait`` for the device;
    returns the seconds per step."""
    def run():
        start = time.perf_counter()
        for _ in range(steps):
            step_once()
        wait()
        return (time.perf_counter() - start) / steps
    return run


def time_rounds(runs: dict, rounds: int, desc: str) -> dict:
    """Per-step seconds of each run, one figure per round; the runs alternate within a round,
    each round starting one run later, so that no run always follows the same one (torch's
    threads may still spin after its step, and caches hold the last run's arrays)."""
    times = {name: [] for name in runs}
    names = list(runs)
    for k in tqdm(range(rounds), desc=desc, leave=False, disable=None):
        for name in names[k % len(names):] + names[:k % len(names)]:
            times[name].append(runs[name]())
    return times


def summary(seconds) -> dict:
    s = np.asarray(seconds)
    p25, p50, p75 = np.percentile(s, [25, 50, 75])
    return {"median_s": float(p50), "p25_s": float(p25), "p75_s": float(p75),
            "min_s": float(s.min())}


def quartiles(values) -> dict:
    return dict(zip(("p25", "median", "p75"), map(float, np.percentile(values, [25, 50, 75]))))


def measure_bandwidth(elements: int, rounds: int, steps: int) -> dict:
    """Bytes per second of a jitted ``a*s + b`` over float32 arrays, ``a`` donated."""
    stream = jax.jit(lambda a, b, s: a * s + b, donate_argnums=0)
    a = jnp.ones((elements,), jnp.float32)
    b = jnp.ones((elements,), jnp.float32)
    s = jnp.float32(0.5)
    compiled, _ = lower_and_compile(stream, (a, b, s))
    box = [compiled(a, b, s)]

    def step_once():
        box[0] = compiled(box[0], b, s)

    run = round_timer(step_once, lambda: box[0].block_until_ready(), steps)
    run()
    per_step = time_rounds({"stream": run}, rounds, "bandwidth")["stream"]
    stats = summary(per_step)
    nbytes = STREAM_BYTES_PER_ELEMENT * elements
    return {"elements": elements, "bytes_per_step": nbytes, "step": stats,
            "median_bytes_per_s": nbytes / stats["median_s"],
            "best_bytes_per_s": nbytes / stats["min_s"], "per_round_s": per_step}


def compile_one_pass_kernel(cache: Path | None) -> float:
    """Seconds to build the C++ kernel of Adam's step for ``gradchain.one_pass_function`` (in
    ``cache``, else in a fresh temporary directory: a cold compile); every tree then reuses it
    (its program does not depend on the shapes)."""
    os.environ["GRADCHAIN_KERNEL_CACHE"] = str(cache or tempfile.mkdtemp(prefix="gc-kernels-"))
    tree = {"w": jnp.ones((8,), jnp.float32)}
    contender = next(c for c in CONTENDERS if c.one_pass)
    start = time.perf_counter()
    jax.eval_shape(adam_step(contender), tree, contender.tx.init(tree), tree)
    seconds = time.perf_counter() - start
    print(f"one-pass kernel (Adam's step as C++, once per machine): built in {seconds:.2f} s",
          flush=True)
    return seconds


def warm_up() -> None:
    """Lower and compile every JAX step once on a tiny tree (the Adam step and a training step of
    a two-layer chain), so that JAX's one-time costs (first tracing of each primitive, backend
    start-up) are not charged to whichever optimizer or model is compiled first."""
    tree = {"w": jnp.ones((8,), jnp.float32)}
    chain = random_tree(chain_model_shapes(4, 8), PARAMS_SEED)
    x = jnp.ones((4, 8), jnp.float32)
    lower_and_compile(jax.jit(jax.grad(make_chain_loss(2))), (chain, x))
    for contender in CONTENDERS:
        lower_and_compile(make_step(contender), (tree, contender.tx.init(tree), tree))
        lower_and_compile(make_train_step(contender, make_chain_loss(2)),
                          (chain, contender.tx.init(chain), x))


def load_torch(args) -> TorchEnv | None:
    """``torch`` on ``cuda`` when it sees a GPU, else on the CPU; None when it is not installed,
    fails to start, or ``--no-torch`` was given (its columns are then left out). Called after
    JAX's backend has started, so that JAX loads its own CUDA libraries first."""
    if args.no_torch:
        return None
    try:
        import torch
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        torch.zeros(1, device=device)
    except ImportError:
        print("torch is not installed: its columns are left out", flush=True)
        return None
    except Exception as error:  # a broken install must not cost the JAX figures
        print(f"torch failed to start ({error!r}): its columns are left out", flush=True)
        return None
    return TorchEnv(torch, device)


def device_report(torch_env: TorchEnv | None) -> dict:
    """What ran the figures: JAX's backend and device kind, torch's device and its name."""
    report = {"jax": jax.__version__, "optax": optax.__version__,
              "gradchain": gradchain.__version__, "jax_backend": jax.default_backend(),
              "jax_device_kind": jax.devices()[0].device_kind,
              "jax_devices": [str(d) for d in jax.devices()], "host": platform.machine(),
              "host_cpus": os.cpu_count()}
    if torch_env is not None:
        torch, device = torch_env
        report["torch"] = torch.__version__
        report["torch_device"] = str(device)
        report["torch_device_name"] = (torch.cuda.get_device_name(device)
                                       if device.type == "cuda" else platform.processor() or "cpu")
    return report


def device_line(devices: dict) -> str:
    line = (f"jax {devices['jax']} on {devices['jax_backend']} ({devices['jax_device_kind']})")
    if "torch" in devices:
        line += (f"; torch {devices['torch']} on {devices['torch_device']} "
                 f"({devices['torch_device_name']})")
    return line


def jax_runner(contender: Contender, shapes: dict, grads, args) -> Runner:
    params = random_tree(shapes, PARAMS_SEED)  # the same start for every optimizer
    state = contender.tx.init(params)
    compiled, entry = lower_and_compile(make_step(contender), (params, state, grads),
                                        f"  {contender.name}")
    entry["memory"] = memory_figures(compiled)
    nbytes = tree_bytes(state)
    carry = [params, state]
    donated = jax.tree.leaves(carry)

    def step_once():
        carry[:] = compiled(carry[0], carry[1], grads)

    return Runner(round_timer(step_once, lambda: jax.block_until_ready(carry),
                              args.steps_per_round),
                  entry, lambda: jax.tree.leaves(carry[0]), donated, lambda: nbytes)


def torch_runner(torch_env: TorchEnv, options: dict, shapes: dict, grads: list,
                 args) -> Runner:
    """``torch.optim.Adam(**options)`` on the same params, gradients given through ``.grad``."""
    torch, device = torch_env
    params = [torch.tensor(a, device=device, requires_grad=True)
              for a in numpy_leaves(shapes, PARAMS_SEED)]
    for p, g in zip(params, grads):
        p.grad = g
    optimizer = torch.optim.Adam(params, lr=LEARNING_RATE, **options)
    wait = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def state_bytes():
        return sum(t.nbytes for s in optimizer.state.values() for t in s.values()
                   if torch.is_tensor(t))

    return Runner(round_timer(optimizer.step, wait, args.steps_per_round),
                  {"lower_s": None, "compile_s": None, "options": options},
                  lambda: [p.detach().cpu().numpy() for p in params], [], state_bytes)


def ratio_figures(result: dict, times: dict, mine: str, theirs: str,
                  max_difference: float) -> dict:
    """``mine``'s figures over ``theirs``: per-round step ratios, medians, compile times."""
    ours, other = result[mine], result[theirs]
    figures = {"step": quartiles(np.asarray(times[mine]) / np.asarray(times[theirs])),
               "ratio_of_median_steps": ours["step"]["median_s"] / other["step"]["median_s"],
               "max_abs_param_difference": max_difference}
    if other["compile_s"] is not None:
        figures["lower_ratio"] = ours["lower_s"] / other["lower_s"]
        figures["compile_ratio"] = ours["compile_s"] / other["compile_s"]
        figures["lower_plus_compile_ratio"] = ((ours["lower_s"] + ours["compile_s"])
                                               / (other["lower_s"] + other["compile_s"]))
    return figures


def benchmark_tree(name: str, shapes: dict, args, bandwidth: float,
                   torch_env: TorchEnv | None) -> dict:
    grads_np = numpy_leaves(shapes, GRADS_SEED)
    grads = jax.tree.unflatten(jax.tree.structure(shapes, is_leaf=is_shape),
                               [jnp.array(a) for a in grads_np])
    n_params = sum(a.size for a in grads_np)
    n_leaves = len(grads_np)
    print(f"\n[{name}] {n_leaves:,} leaves, {n_params:,} parameters "
          f"({ADAM_BYTES_PER_PARAM * n_params / 1e9:.3f} GB moved per Adam step)", flush=True)

    beside = () if args.adam_only else BESIDE_ADAM
    runners = {c.name: jax_runner(c, shapes, grads, args) for c in CONTENDERS + beside}
    result = {"leaves": n_leaves, "params": n_params}
    for runner_name, runner in runners.items():
        result[runner_name] = dict(runner.entry, first_round_s=runner.run())
    if torch_env is not None:
        torch_grads = [torch_env.torch.tensor(a, device=torch_env.device) for a in grads_np]
        for torch_name, options in TORCH_ADAMS:
            try:
                runner = torch_runner(torch_env, options, shapes, torch_grads, args)
                result[torch_name] = dict(runner.entry, first_round_s=runner.run())
            except Exception as error:  # e.g. out of memory: keep the other columns
                print(f"  {torch_name} failed ({error!r}): left out of this tree", flush=True)
                result.setdefault("failed", {})[torch_name] = repr(error)
                continue
            runners[torch_name] = runner
    del grads_np

    kept = [name for name, runner in runners.items()
            if not all(x.is_deleted() for x in runner.donated)]
    times = time_rounds({n: r.run for n, r in runners.items()}, args.rounds, name)

    for runner_name, runner in runners.items():
        entry = result[runner_name]
        entry["step"] = summary(times[runner_name])
        entry["per_round_s"] = times[runner_name]
        entry["bytes_per_s"] = ADAM_BYTES_PER_PARAM * n_params / entry["step"]["median_s"]
        entry["bandwidth_fraction"] = entry["bytes_per_s"] / bandwidth
        entry["state_bytes_per_param"] = runner.state_bytes() / n_params
    finals = {name: runner.final_params() for name, runner in runners.items()}
    beside = {c.name for c in BESIDE_ADAM}
    result["ratios"] = {
        f"{mine}/{other}": ratio_figures(result, times, mine, other, float(max(
            max_abs_difference(a, b) for a, b in zip(finals[mine], finals[other]))))
        for mine in REFERENCES for other in runners
        if other not in beside and other not in REFERENCES[:REFERENCES.index(mine) + 1]}
    result["contenders"] = list(runners)
    result["donation_not_honoured_by"] = kept
    print_tree_rows(name, result, header=True)
    return result


def fmt_seconds(value, width: int, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


TABLE_HEADER = (f"{'tree':<7} {'optimizer':<16} {'step ms':>10} {'[p25 - p75]':>19} "
                f"{'GB/s':>7} {'%bw':>5} {'lower s':>8} {'compile s':>9} {'state B/p':>9}")


def print_tree_rows(tree: str, r: dict, header: bool = False) -> None:
    if header:
        print(TABLE_HEADER + "\n" + "-" * len(TABLE_HEADER))
    for name in r["contenders"]:
        e = r[name]
        s = e["step"]
        spread = f"[{1e3 * s['p25_s']:.3f} - {1e3 * s['p75_s']:.3f}]"
        print(f"{tree:<7} {name:<16} {1e3 * s['median_s']:>10.3f} {spread:>19} "
              f"{e['bytes_per_s'] / 1e9:>7.2f} {100 * e['bandwidth_fraction']:>4.0f}% "
              f"{fmt_seconds(e['lower_s'], 8)} {fmt_seconds(e['compile_s'], 9)} "
              f"{e['state_bytes_per_param']:>9.2f}")
    for other, ratio in r["ratios"].items():
        step = ratio["step"]
        spread = f"[{step['p25']:.3f} - {step['p75']:.3f}]"
        print(f"{tree:<7} {other:<16} {step['median']:>10.3f} {spread:>19} {'':>7} "
              f"{'':>5} {fmt_seconds(ratio.get('lower_ratio'), 8, 3)} "
              f"{fmt_seconds(ratio.get('compile_ratio'), 9, 3)}", flush=True)


def print_table(results: dict, bandwidth: dict, devices: dict, args) -> None:
    steps = (args.rounds + 1) * args.steps_per_round
    print(f"\n{device_line(devices)}")
    print(f"step time: median [p25-p75] of {args.rounds} rounds x {args.steps_per_round} "
          f"steps; GB/s = {ADAM_BYTES_PER_PARAM} bytes/param / median step; "
          f"%bw = GB/s / streaming bandwidth ({bandwidth['median_bytes_per_s'] / 1e9:.2f} GB/s)")
    print(TABLE_HEADER + "\n" + "-" * len(TABLE_HEADER))
    for tree, r in results.items():
        print_tree_rows(tree, r)
    print(f"\nA/X = A / X for A = {REFERENCE} (XLA's code), {ONE_PASS} (the same adam "
          f"through gradchain.one_pass_function) and {FLAT} (gradchain.flatten(adam): the "
          "leaves as one vector); < 1: A faster; step: median [p25 - p75] of "
          "the per-round ratios (all optimizers ran in every round); torch has no compile step "
          "(-); params differ: max |p_A - p_X| after all steps.")
    for tree, r in results.items():
        figures = "; ".join(
            f"{other} median steps {ratio['ratio_of_median_steps']:.3f}"
            + (f", lower + compile {ratio['lower_plus_compile_ratio']:.3f}"
               if "lower_plus_compile_ratio" in ratio else "")
            + f", params differ by {ratio['max_abs_param_difference']:.2e}"
            for other, ratio in r["ratios"].items())
        print(f"{tree}: {r['leaves']:,} leaves, {r['params']:,} params, {steps} steps; {figures}; "
              "JAX donation " + (f"NOT honoured by {', '.join(r['donation_not_honoured_by'])}"
                                 if r["donation_not_honoured_by"] else "honoured"))
        peaks = ", ".join(f"{name} {r[name]['memory']['peak'] / r['params']:.2f}"
                          for name in r["contenders"] if r[name].get("memory"))
        if peaks:
            print(f"{tree}: compiled step's peak memory (XLA's analysis), bytes/param: {peaks}")


class TimeGuard:
    """Skips work that would end more than ``limit_s`` seconds after ``start``.

    A compile cannot be interrupted once started, so each one is predicted first: from the same
    measurement at another size, scaled linearly by the number of leaves, else from the gradient
    alone at this size (a lower bound); with neither, only the time already spent is checked.
    """

    def __init__(self, limit_s: float | None, start: float):
        self.limit_s, self.start = limit_s, start
        self.seen = {}  # measurement -> (leaves, seconds)

    def left_s(self) -> float:
        if self.limit_s is None:
            return float("inf")
        return self.limit_s - (time.perf_counter() - self.start)

    def observe(self, kind: str, leaves: int, seconds: float) -> None:
        self.seen[kind] = (leaves, seconds)

    def predict_s(self, kind: str, leaves: int) -> float:
        for known in (kind, "grad"):
            if known in self.seen:
                n, seconds = self.seen[known]
                return seconds * leaves / n
        return 0.0

    def skip_reason(self, kinds: list, leaves: int) -> str | None:
        """Why the measurements ``kinds`` at ``leaves`` leaves, one after the other, would end
        too late; None when they are predicted to fit."""
        predicted, left = sum(self.predict_s(k, leaves) for k in kinds), self.left_s()
        if predicted < left:
            return None
        return f"predicted {predicted:.0f} s, {max(left, 0):.0f} s left of --time-limit"


def measure_compile_share(leaves: int, args, guard: TimeGuard, result: dict,
                          saved: Callable[[], None]) -> None:
    """Lower + compile of the gradient alone, then of a training step (gradient, ``update``,
    ``apply_updates``) with each JAX optimizer, on a chain of tiny dense layers with ``leaves``
    parameter leaves; share = (step - gradient) / gradient. Fills ``result`` and calls
    ``saved`` after each measurement (a run cut off keeps what it measured)."""
    layers = leaves // 2
    params = random_tree(chain_model_shapes(leaves, args.share_width), PARAMS_SEED)
    x = jnp.ones((args.share_batch, args.share_width), jnp.float32)
    result.update(leaves=leaves, layers=layers,
                  params=sum(p.size for p in jax.tree.leaves(params)))
    print(f"\n[compile share] {leaves:,} leaves ({layers:,} dense layers of "
          f"{args.share_width}x{args.share_width})", flush=True)
    jobs = [("grad", lambda: (jax.jit(jax.grad(make_chain_loss(layers))), (params, x)))]
    jobs += [(c.name, lambda c=c: (make_train_step(c, make_chain_loss(layers)),
                                   (params, c.tx.init(params), x)))
             for c in CONTENDERS if c.name in args.share_optimizers]
    whole = guard.skip_reason([kind for kind, _ in jobs], leaves)
    for kind, build in jobs:
        reason = whole or guard.skip_reason([kind], leaves)
        if reason is not None:
            print(f"  {kind}: skipped ({reason})", flush=True)
            result[kind] = {"skipped": reason}
            saved()
            continue
        _, figures = lower_and_compile(*build(), label=f"  {kind}")
        figures["total_s"] = figures["lower_s"] + figures["compile_s"]
        guard.observe(kind, leaves, figures["total_s"])
        result[kind] = figures
        grad = result["grad"]
        if kind != "grad" and "total_s" in grad:
            figures["compile_share"] = (figures["total_s"] - grad["total_s"]) / grad["total_s"]
            figures["xla_compile_share"] = ((figures["compile_s"] - grad["compile_s"])
                                            / grad["compile_s"])
            print(f"  {kind}: compile share {figures['compile_share']:.2f} "
                  f"(XLA compile alone {figures['xla_compile_share']:.2f})", flush=True)
        saved()


def print_compile_share(shares: list, devices: dict) -> None:
    print(f"\n{device_line(devices)}")
    print("compile share = (lower + compile of grad + update + apply - that of grad alone) "
          "/ that of grad alone")
    header = (f"{'leaves':>7} {'step':<10} {'lower s':>8} {'compile s':>9} {'total s':>8} "
              f"{'share':>6} {'XLA share':>9}")
    print(header + "\n" + "-" * len(header))
    for r in shares:
        for kind in ["grad"] + [c.name for c in CONTENDERS if c.name in r]:
            e = r[kind]
            if "skipped" in e:
                print(f"{r['leaves']:>7,} {kind:<10} skipped: {e['skipped']}")
                continue
            share = (f"{e['compile_share']:>6.2f} {e['xla_compile_share']:>9.2f}"
                     if "compile_share" in e else "")
            print(f"{r['leaves']:>7,} {kind:<10} {e['lower_s']:>8.2f} {e['compile_s']:>9.2f} "
                  f"{e['total_s']:>8.2f} {share}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default=",".join(TREES),
                        help="comma-separated subset of " + ",".join(TREES) + ", run in the "
                             "order given")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps-per-round", type=int, default=5)
    parser.add_argument("--json", type=Path, help="save all figures (and raw times) here; "
                        "rewritten after every tree and compile-share model")
    parser.add_argument("--no-torch", action="store_true",
                        help="leave torch's columns out even when torch is installed")
    parser.add_argument("--adam-only", action="store_true",
                        help="leave out the optimizers run beside Adam (Adafactor, Muon)")
    parser.add_argument("--compile-share", default="",
                        help="comma-separated leaf counts of the models whose compile share "
                             "is measured after the trees, e.g. 2000,5000 (default: none)")
    parser.add_argument("--share-optimizers", default=",".join(c.name for c in CONTENDERS),
                        help="comma-separated optimizers whose compile share is measured "
                             "(default: all of " + ",".join(c.name for c in CONTENDERS) + ")")
    parser.add_argument("--share-width", type=int, default=8,
                        help="width of the compile-share model's dense layers (default 8)")
    parser.add_argument("--share-batch", type=int, default=4,
                        help="rows of the compile-share model's input (default 4)")
    parser.add_argument("--time-limit", type=float,
                        help="seconds from the start after which no tree is started and no "
                             "compile-share measurement predicted to end later is started")
    parser.add_argument("--kernel-cache", type=Path,
                        help="directory of compiled one-pass kernels to use (default: a fresh "
                             "temporary one, so the C++ compile is measured)")
    parser.add_argument("--gpt2-layers", type=int, default=12)
    parser.add_argument("--gpt2-width", type=int, default=768)
    parser.add_argument("--small-leaves", type=int, default=5000)
    parser.add_argument("--single-size", type=int, default=1_000_000)
    parser.add_argument("--stream-elements", type=int, default=1 << 26,
                        help="elements per array of the bandwidth kernel (default 64 Mi: "
                             "768 MiB moved per pass)")
    args = parser.parse_args(argv)
    args.trees = [t for t in args.trees.split(",") if t]
    args.share_optimizers = [n for n in args.share_optimizers.split(",") if n]
    unknown = set(args.share_optimizers) - {c.name for c in CONTENDERS}
    if unknown:
        parser.error(f"unknown --share-optimizers {sorted(unknown)}")
    unknown = set(args.trees) - set(TREES)
    if unknown:
        parser.error(f"unknown trees {sorted(unknown)}; choose from {', '.join(TREES)}")
    if args.rounds < 1 or args.steps_per_round < 1:
        parser.error("--rounds and --steps-per-round must be at least 1")
    try:
        args.compile_share = [int(n) for n in args.compile_share.split(",") if n]
    except ValueError:
        parser.error(f"--compile-share takes comma-separated integers, got {args.compile_share!r}")
    if any(n < 2 or n % 2 for n in args.compile_share):
        parser.error(f"--compile-share leaf counts must be even and at least 2 (a kernel and a "
                     f"bias per layer), got {args.compile_share}")
    return args


def save(report: dict, path: Path | None) -> None:
    """Write ``report`` to ``path`` whole or not at all (a run cut off mid-write keeps the last
    complete file)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(report, indent=2))
        os.replace(partial, path)


def main(argv=None) -> None:
    start = time.perf_counter()
    args = parse_args(argv)
    guard = TimeGuard(args.time_limit, start)
    jax.devices()  # start JAX's backend before torch (see load_torch)
    torch_env = load_torch(args)
    devices = device_report(torch_env)
    print(f"{device_line(devices)}; JAX devices {devices['jax_devices']}")
    print(f"optax {devices['optax']}, gradchain {devices['gradchain']}, host {devices['host']} "
          f"with {devices['host_cpus']} CPUs")
    full = gpt2_shapes(12, 768)
    print(f"GPT-2 small parameter count: "
          f"{sum(int(np.prod(s)) for s in jax.tree.leaves(full, is_leaf=is_shape)):,}",
          flush=True)

    bandwidth = measure_bandwidth(args.stream_elements, args.rounds, args.steps_per_round)
    print(f"streaming a*s + b over {args.stream_elements:,} float32 elements: "
          f"{bandwidth['median_bytes_per_s'] / 1e9:.2f} GB/s median, "
          f"{bandwidth['best_bytes_per_s'] / 1e9:.2f} GB/s best", flush=True)
    report = {"devices": devices,
              "settings": {k: (str(v) if isinstance(v, Path) else v)
                           for k, v in vars(args).items()},
              "bandwidth": bandwidth, "trees": {}, "compile_share": [], "skipped_trees": []}
    save(report, args.json)

    if ONE_PASS_LEFT_OUT is None:
        report["one_pass_kernel_compile_s"] = compile_one_pass_kernel(args.kernel_cache)
    else:
        print(f"{ONE_PASS} left out: {ONE_PASS_LEFT_OUT}", flush=True)
        report["one_pass_left_out"] = ONE_PASS_LEFT_OUT
    warm_up()
    for name in args.trees:
        if guard.left_s() <= 0:
            print(f"\n[{name}] skipped: --time-limit reached", flush=True)
            report["skipped_trees"].append(name)
            continue
        result = benchmark_tree(name, tree_shapes(name, args), args,
                                bandwidth["median_bytes_per_s"], torch_env)
        report["trees"][name] = result
        if name == "small":  # an Adam step's compile time: a floor for a training step's
            for c in CONTENDERS:
                guard.observe(c.name, result["leaves"],
                              result[c.name]["lower_s"] + result[c.name]["compile_s"])
        save(report, args.json)
    if report["trees"]:
        print_table(report["trees"], bandwidth, devices, args)

    for leaves in args.compile_share:
        report["compile_share"].append({})
        measure_compile_share(leaves, args, guard, report["compile_share"][-1],
                              lambda: save(report, args.json))
    if report["compile_share"]:
        print_compile_share(report["compile_share"], devices)
    print(f"\ndone in {time.perf_counter() - start:.0f} s"
          + (f"; figures saved to {args.json}" if args.json else ""), flush=True)


if __name__ == "__main__":
    main()
