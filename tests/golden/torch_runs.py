"""What the torch golden generators share: a closed-loop run on ``tests/problems.py``'s loss, the
checks a run must pass to become golden data, and the ``.npz`` layout.

A generator builds, per configuration, ``build(params) -> (optimizer, scheduler or None)`` over
the list of torch tensors, and calls ``record`` once per dtype and configuration, then ``save``.
The files hold ``name/params/<leaf>`` (and, in float32, ``name/grads/<leaf>``) as ``(STEPS, n)``
arrays, ``configs`` (a JSON string of each configuration's description) and ``torch_version``.

Golden data are meaningful only where the run is well conditioned. Two correct implementations
differ by rounding (~1e-16 relative) at every step; ``amplification`` models that by adding noise
of size ``NOISE`` to the params after every step of a float64 run, and the run is accepted only
if it then moves at most ``MAX_AMPLIFICATION · NOISE`` away from the noiseless one, so that
rounding differences (amplified to at most ~1e-12) stay far below the tests' 1e-10. A stable run
accumulates the noise as a random walk (amplification ~15 over 200 steps); an unstable one grows
it geometrically and fails.

Needs torch and jax (``tests/problems.py`` imports jax); the test suite itself needs no torch.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent)]  # gradchain, and tests/problems.py

from problems import INITIAL, loss  # noqa: E402

STEPS = 200
DTYPES = {"float64": torch.float64, "float32": torch.float32}
NOISE = 1e-13
MAX_AMPLIFICATION = 1e4


def run(build, dtype, noise=0.0):
    """Closed-loop run of ``build``'s optimizer; returns ``(history, optimizer, loss before, loss
    after)``.

    ``history[kind][leaf]`` is a ``(STEPS, n)`` array, ``kind`` ``"params"`` or ``"grads"``. The
    scheduler, if any, steps after every optimizer step. ``noise`` > 0 adds ``noise · N(0, 1)``
    (fixed seed) to the params after every step.
    """
    params = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in INITIAL.items()}
    optimizer, scheduler = build(list(params.values()))
    history = {"params": {k: [] for k in params}, "grads": {k: [] for k in params}}
    generator = torch.Generator().manual_seed(0)
    first = loss(params, xp=torch).item()
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss(params, xp=torch).backward()
        for k, p in params.items():
            history["grads"][k].append(p.grad.detach().clone())
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        for k, p in params.items():
            if noise:
                with torch.no_grad():
                    p.add_(torch.randn(p.shape, generator=generator, dtype=dtype), alpha=noise)
            history["params"][k].append(p.detach().clone())
    last = loss(params, xp=torch).item()
    arrays = {kind: {k: torch.stack(v).numpy() for k, v in leaves.items()}
              for kind, leaves in history.items()}
    return arrays, optimizer, first, last


def hyperparameters(optimizer):
    """The optimizer's full hyperparameters as it used them: ``param_groups[0]`` without the
    params (and without the ``initial_lr`` a scheduler adds)."""
    return {k: v for k, v in optimizer.param_groups[0].items()
            if k not in ("params", "initial_lr")}


def amplification(build, params):
    """How far a float64 run with per-step noise ends up from ``params``, per unit of noise."""
    noisy = run(build, torch.float64, NOISE)[0]["params"]
    return max(np.abs(noisy[k] - params[k]).max() for k in params) / NOISE


def record(arrays, name, dtype_name, build, check=None):
    """Runs configuration ``name`` in ``DTYPES[dtype_name]``, checks it, adds its trajectories to
    ``arrays`` and prints a line about it; returns the optimizer after the run.

    The run must stay finite and halve the loss; ``check(optimizer)``, if given, may reject it
    (raise) and returns text for the printed line; in float64 the run must be well conditioned
    (``amplification`` at most ``MAX_AMPLIFICATION``), and only its params are kept.
    """
    dtype = DTYPES[dtype_name]
    history, optimizer, first, last = run(build, dtype)
    finite = all(np.isfinite(a).all() for leaves in history.values() for a in leaves.values())
    if not (finite and last < 0.5 * first):
        raise RuntimeError(f"{name} ({dtype_name}): loss {first:.4g} -> {last:.4g}; "
                           "choose hyperparameters that make the run move and stay finite")
    line = f"{dtype_name:8s} {name:30s} loss {first:7.4f} -> {last:7.4f}"
    if check is not None:
        line += check(optimizer)
    kinds = ("params", "grads")
    if dtype == torch.float64:
        kinds = ("params",)
        growth = amplification(build, history["params"])
        if growth > MAX_AMPLIFICATION:
            raise RuntimeError(f"{name}: per-step noise grows {growth:.3g}-fold; the run "
                               "is too ill-conditioned for a 1e-10 comparison")
        line += f"  noise amplification {growth:8.3g}"
    print(line)
    for kind in kinds:
        for leaf, values in history[kind].items():
            arrays[f"{name}/{kind}/{leaf}"] = values
    return optimizer


def save(file_name, described, arrays):
    """Writes ``HERE / file_name``: ``arrays``, ``configs`` (``described`` as sorted JSON) and
    ``torch_version``."""
    path = HERE / file_name
    np.savez_compressed(path, configs=np.array(json.dumps(described, sort_keys=True)),
                        torch_version=np.array(torch.__version__), **arrays)
    size = path.stat().st_size / 1024
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({size:.0f} KiB)")
