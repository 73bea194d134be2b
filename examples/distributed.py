"""Data-parallel training over several processes, with the optimizer state split (ZeRO-1).

A small MLP learns a fixed random teacher network. Every device of every process holds the
params (replicated) and ``1/n`` of each Adam moment (``gradchain.state_sharding(...,
shard_over="data")``); each global batch is split over all devices along the ``data`` axis, and
the jitted step's collectives (the gradient mean, the gathering of the updated params) run
across processes. The numbers do not depend on the number of processes or devices (up to the
order of float32 sums).

    # one machine, N local processes on loopback, each with its own simulated CPU devices
    python examples/distributed.py --processes 2 --out /tmp/params.npz
    # a real cluster: the same command on every host, process ids 0..N-1
    python examples/distributed.py --coordinator 10.0.0.1:1234 --process-id I --num-processes N
    # a TPU pod or a SLURM/Kubernetes cluster that JAX detects by itself
    python examples/distributed.py --coordinator auto

Without any of these it trains in this one process on its local devices. ``--out PATH`` (written
by process 0) saves the final params and ``process_count`` to an ``.npz``.

Checkpoints are Orbax's, written and read by all processes together, each its own shards:

    # save params, Adam's split moments and the step count after 20 steps, train on to 40
    python examples/distributed.py --processes 2 --save-at 20 --checkpoint /tmp/run
    # continue from it, here in one process (any process and device count restores it)
    python examples/distributed.py --resume /tmp/run

The checkpoint holds global arrays, not one process's pieces: a restore reshards them onto the
mesh of the restoring job (``gc.state_sharding`` of its own devices), so the process and device
counts may change between saving and resuming.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import gradchain as gc

INPUTS, HIDDEN, OUTPUTS = 16, 32, 4
EXAMPLES = 1024


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=None,
                        help="start this many local processes on loopback and wait for them")
    parser.add_argument("--devices-per-process", type=int, default=4,
                        help="simulated CPU devices of each local process (with --processes)")
    parser.add_argument("--coordinator", default=None,
                        help="HOST:PORT of process 0, or 'auto' (TPU pods, SLURM, ...)")
    parser.add_argument("--process-id", type=int, default=None)
    parser.add_argument("--num-processes", type=int, default=None)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128,
                        help="global batch, a multiple of the total number of devices")
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--out", default=None, help=".npz for the final params (process 0)")
    parser.add_argument("--save-at", type=int, default=None,
                        help="after this many steps, save an Orbax checkpoint to --checkpoint")
    parser.add_argument("--checkpoint", default=None,
                        help="directory for --save-at's checkpoint, seen by every process")
    parser.add_argument("--resume", default=None,
                        help="a --checkpoint directory to restore and continue from")
    args = parser.parse_args(argv)
    if (args.save_at is None) != (args.checkpoint is None):
        parser.error("--save-at and --checkpoint go together")
    if args.save_at is not None and not 1 <= args.save_at <= args.steps:
        parser.error(f"--save-at {args.save_at} must be between 1 and --steps {args.steps}")
    return args


def launch(args: argparse.Namespace) -> int:
    """Start ``args.processes`` copies of this script as the processes of one job on loopback
    (gloo CPU collectives), each with ``--devices-per-process`` simulated devices; the exit
    status is the first failing process's."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--steps", str(args.steps), "--batch-size", str(args.batch_size),
              "--learning-rate", repr(args.learning_rate), "--coordinator", f"127.0.0.1:{port}",
              "--num-processes", str(args.processes)]
    for option, value in (("--out", args.out), ("--save-at", args.save_at),
                          ("--checkpoint", args.checkpoint), ("--resume", args.resume)):
        if value is not None:
            common += [option, str(value)]
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": " ".join(
        flags + [f"--xla_force_host_platform_device_count={args.devices_per_process}"])}
    workers = [subprocess.Popen([sys.executable, os.path.abspath(__file__), *common,
                                 "--process-id", str(i)], env=env)
               for i in range(args.processes)]
    codes = [w.wait() for w in workers]
    return next((code for code in codes if code), 0)


def connect(args: argparse.Namespace) -> None:
    """Join the job: ``jax.distributed.initialize`` (CPU collectives over gloo)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if args.coordinator == "auto":
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id)


def problem():
    """The data (the same on every process) and the initial params."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, INPUTS)).astype(np.float32)
    teacher = rng.normal(size=(INPUTS, OUTPUTS)) / np.sqrt(INPUTS)
    y = np.tanh(x @ teacher).astype(np.float32)
    params = {"w1": rng.normal(size=(INPUTS, HIDDEN)) / np.sqrt(INPUTS),
              "b1": np.zeros(HIDDEN), "w2": rng.normal(size=(HIDDEN, OUTPUTS)) / np.sqrt(HIDDEN),
              "b2": np.zeros(OUTPUTS)}
    return x, y, {k: v.astype(np.float32) for k, v in params.items()}


def loss(params, x, y):
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean(jnp.sum((hidden @ params["w2"] + params["b2"] - y) ** 2, axis=-1))


def global_array(value: np.ndarray, sharding):
    """A global array from a host value every process has: each process fills its devices."""
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def save(directory: str, step: int, params, state) -> None:
    """An Orbax checkpoint of ``{"step", "params", "state"}``; every process calls it and writes
    the shards its devices hold (one copy of each), process 0 the metadata."""
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.abspath(directory),
                      {"step": np.asarray(step, np.int32), "params": params, "state": state})
    checkpointer.wait_until_finished()


def restore(directory: str, tx, params, shardings) -> tuple:
    """``(step, params, state)`` from an Orbax checkpoint, laid out as ``params`` and
    ``state_sharding``'s ``shardings`` of ``tx``'s state ask (no state is allocated first).
    Each device reads the parts of the global arrays it holds here, whatever the process and
    device counts that wrote them."""
    state = jax.tree.map(lambda s, sharding: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                                                  sharding=sharding),
                         jax.eval_shape(tx.init, params), shardings)
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                          {"step": np.asarray(0, np.int32), "params": params, "state": state})
    restored = ocp.StandardCheckpointer().restore(os.path.abspath(directory), target)
    return int(restored["step"]), restored["params"], restored["state"]


def optimizer(learning_rate: float):
    return gc.chain(gc.clip_by_global_norm(1.0), gc.adamw(learning_rate, weight_decay=1e-4))


def train(args: argparse.Namespace) -> dict:
    """The final params (NumPy) of training on all the job's devices."""
    mesh = Mesh(np.array(jax.devices()), ("data",))
    replicated, rows = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    if args.batch_size % jax.device_count() or not 0 < args.batch_size <= EXAMPLES:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the "
                         f"{jax.device_count()} devices between 1 and the {EXAMPLES} examples")
    x, y, initial = problem()
    tx = optimizer(args.learning_rate)
    params = {k: global_array(v, replicated) for k, v in initial.items()}
    shardings = gc.state_sharding(tx, params, shard_over="data")
    if args.resume is None:
        start, state = 0, jax.jit(tx.init, out_shardings=shardings)(params)
    else:
        start, params, state = restore(args.resume, tx, params, shardings)
        if jax.process_index() == 0:
            print(f"resumed at step {start} from {args.resume}", flush=True)

    def step(params, state, x, y):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return gc.apply_updates(params, updates), state, value

    step = jax.jit(step, out_shardings=(replicated, shardings, replicated),
                   donate_argnums=(0, 1))
    batches = EXAMPLES // args.batch_size
    for t in range(start, args.steps):
        rows_of_batch = slice((t % batches) * args.batch_size,
                              (t % batches + 1) * args.batch_size)
        params, state, value = step(params, state, global_array(x[rows_of_batch], rows),
                                    global_array(y[rows_of_batch], rows))
        if jax.process_index() == 0 and (t % 10 == 0 or t == args.steps - 1):
            print(f"step {t:4d}  loss {float(value.addressable_data(0)):.6f}", flush=True)
        if t + 1 == args.save_at:
            save(args.checkpoint, t + 1, params, state)
    return {k: np.asarray(v.addressable_data(0)) for k, v in params.items()}


def main(argv=None) -> int:
    args = parse(argv)
    if args.processes is not None:
        return launch(args)
    if args.coordinator is not None:
        connect(args)
    if jax.process_index() == 0:
        print(f"{jax.process_count()} process(es), {jax.device_count()} devices; each device "
              f"holds the params and 1/{jax.device_count()} of Adam's moments (of those that "
              "divide)", flush=True)
    params = train(args)
    if args.out and jax.process_index() == 0:
        np.savez(args.out, process_count=jax.process_count(), **params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
