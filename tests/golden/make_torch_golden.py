"""Generate the golden trajectories of ``torch.optim`` that ``tests/test_torch_parity.py`` checks.

Each configuration runs ``torch.optim`` for ``STEPS`` closed-loop steps on the shared problem of
``tests/problems.py`` (the very same ``loss``, evaluated with ``xp=torch``), once in float64 and
once in float32. ``torch_<dtype>.npz`` holds, per configuration ``name``:

- ``name/params/<leaf>``: ``(STEPS, n)`` params after each step;
- ``name/grads/<leaf>``: ``(STEPS, n)`` the gradient each step used, in float32 only (the test
  feeds these to gradchain, open loop; float64 is compared closed loop, so its gradients are
  left out to keep the files small);

and ``configs``: a JSON string mapping each name to the optimizer class and its full
hyperparameters as torch used them (``param_groups[0]`` without the params), so the test reads
every number, defaults included, from here.

Needs torch and jax (``tests/problems.py`` imports jax); the test suite itself needs no torch.
Regenerate (see BUILD.md, "Golden trajectories")::

    python3 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch==2.13.0 numpy jax==0.10.2
    /work/venv-torch/bin/python tests/golden/make_torch_golden.py
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

# name -> (torch.optim class, keyword arguments); unnamed arguments keep torch's defaults.
# Learning rates are chosen so that every run moves (the loss falls by at least half) and stays
# finite; ``main`` checks both.
CONFIGS = {
    "sgd": ("SGD", {"lr": 0.01}),
    "sgd_momentum": ("SGD", {"lr": 0.005, "momentum": 0.9}),
    "sgd_nesterov": ("SGD", {"lr": 0.005, "momentum": 0.9, "nesterov": True}),
    "sgd_dampening": ("SGD", {"lr": 0.005, "momentum": 0.9, "dampening": 0.5}),
    "sgd_momentum_weight_decay": ("SGD", {"lr": 0.005, "momentum": 0.9, "weight_decay": 0.1}),
    "adagrad": ("Adagrad", {"lr": 0.3}),
    "adagrad_lr_decay_weight_decay": ("Adagrad", {"lr": 0.5, "lr_decay": 0.01,
                                                  "weight_decay": 0.05}),
    # RMSProp's step γ·g/(√v + ε) does not shrink with the gradient: near the minimum v decays
    # with g², the effective step γ/√v grows, and the iteration starts to oscillate. There the
    # run is chaotic and no two correct implementations agree past rounding (at lr 0.01, plain
    # and centred, ``amplification`` below measures 3e11). Centred RMSProp is the more fragile:
    # its denominator √(v - ḡ²) + ε cancels as ḡ² approaches v. The learning rates below keep
    # all five runs out of that regime for 200 steps (amplification < 20; ``main`` checks it,
    # see ``MAX_AMPLIFICATION``). torch's default ε = 1e-8 is kept, the setting people run: in
    # these runs v - ḡ² stays above 0.4·v, so the cancellation costs no digits, and no larger ε
    # is needed to bound the denominator.
    "rmsprop": ("RMSprop", {"lr": 0.005}),
    "rmsprop_centered": ("RMSprop", {"lr": 0.003, "centered": True}),
    "rmsprop_momentum": ("RMSprop", {"lr": 0.002, "momentum": 0.9}),
    "rmsprop_centered_momentum": ("RMSprop", {"lr": 0.001, "centered": True, "momentum": 0.9}),
    "rmsprop_weight_decay": ("RMSprop", {"lr": 0.005, "weight_decay": 0.1}),
    # torch's defaults (lr 1.0, ρ 0.9, ε 1e-6) reach the onset of an instability at step ~195
    # (noise amplification ~1e3, growing ~1.8-fold a step); 200 steps are still well conditioned.
    "adadelta": ("Adadelta", {}),
    "adadelta_weight_decay": ("Adadelta", {"weight_decay": 0.1}),
    "adam": ("Adam", {"lr": 0.05}),
    "adam_weight_decay": ("Adam", {"lr": 0.05, "weight_decay": 0.1}),
    "adam_amsgrad": ("Adam", {"lr": 0.05, "amsgrad": True}),
    "adamw": ("AdamW", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": False}),
}


# Golden data are meaningful only where the run is well conditioned. Two correct implementations
# differ by rounding (~1e-16 relative) at every step; ``amplification`` models that by adding
# noise of size NOISE to the params after every step of a float64 run, and the run is accepted
# only if it then moves at most MAX_AMPLIFICATION · NOISE away from the noiseless one, so that
# rounding differences (amplified to at most ~1e-12) stay far below the test's 1e-10. A stable
# run accumulates the noise as a random walk (amplification ~15 over 200 steps); an unstable one
# grows it geometrically and fails.
NOISE = 1e-13
MAX_AMPLIFICATION = 1e4


def run(optimizer_name, kwargs, dtype, noise=0.0):
    """Closed-loop run; returns ``(history, hyperparameters, loss before, loss after)``.

    ``history[kind][leaf]`` is a ``(STEPS, n)`` array, ``kind`` ``"params"`` or ``"grads"``.
    ``noise`` > 0 adds ``noise · N(0, 1)`` (fixed seed) to the params after every step.
    """
    params = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in INITIAL.items()}
    optimizer = getattr(torch.optim, optimizer_name)(list(params.values()), **kwargs)
    history = {"params": {k: [] for k in params}, "grads": {k: [] for k in params}}
    generator = torch.Generator().manual_seed(0)
    first = loss(params, xp=torch).item()
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss(params, xp=torch).backward()
        for k, p in params.items():
            history["grads"][k].append(p.grad.detach().clone())
        optimizer.step()
        for k, p in params.items():
            if noise:
                with torch.no_grad():
                    p.add_(torch.randn(p.shape, generator=generator, dtype=dtype), alpha=noise)
            history["params"][k].append(p.detach().clone())
    last = loss(params, xp=torch).item()
    hyper = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    arrays = {kind: {k: torch.stack(v).numpy() for k, v in leaves.items()}
              for kind, leaves in history.items()}
    return arrays, hyper, first, last


def amplification(optimizer_name, kwargs, params):
    """How far a float64 run with per-step noise ends up from ``params``, per unit of noise."""
    noisy = run(optimizer_name, kwargs, torch.float64, NOISE)[0]["params"]
    return max(np.abs(noisy[k] - params[k]).max() for k in params) / NOISE


def main():
    torch.use_deterministic_algorithms(True)
    for dtype_name, dtype in DTYPES.items():
        arrays, described = {}, {}
        for name, (optimizer_name, kwargs) in CONFIGS.items():
            history, hyper, first, last = run(optimizer_name, kwargs, dtype)
            finite = all(np.isfinite(a).all() for leaves in history.values()
                         for a in leaves.values())
            if not (finite and last < 0.5 * first):
                raise RuntimeError(f"{name} ({dtype_name}): loss {first:.4g} -> {last:.4g}; "
                                   "choose hyperparameters that make the run move and stay finite")
            line = f"{dtype_name:8s} {name:30s} loss {first:7.4f} -> {last:7.4f}"
            described[name] = {"optimizer": optimizer_name, "hyperparams": hyper}
            kinds = ("params", "grads")
            if dtype == torch.float64:
                kinds = ("params",)
                growth = amplification(optimizer_name, kwargs, history["params"])
                if growth > MAX_AMPLIFICATION:
                    raise RuntimeError(f"{name}: per-step noise grows {growth:.3g}-fold; the run "
                                       "is too ill-conditioned for a 1e-10 comparison")
                line += f"  noise amplification {growth:8.3g}"
            print(line)
            for kind in kinds:
                for leaf, values in history[kind].items():
                    arrays[f"{name}/{kind}/{leaf}"] = values
        path = HERE / f"torch_{dtype_name}.npz"
        np.savez_compressed(path, configs=np.array(json.dumps(described, sort_keys=True)),
                            torch_version=np.array(torch.__version__), **arrays)
        size = path.stat().st_size / 1024
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({size:.0f} KiB)")


if __name__ == "__main__":
    main()
