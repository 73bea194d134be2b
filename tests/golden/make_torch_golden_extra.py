"""Golden trajectories of RAdam, NAdam (torch.optim) and AdaBound/AMSBound (the authors' algorithm).

``tests/test_extra_optimizers.py`` checks gradchain's ``radam``, ``nadam`` and ``adabound`` /
``amsbound`` against these files. Each configuration runs ``STEPS`` closed-loop steps on the
shared problem of ``tests/problems.py`` (the same ``loss``, evaluated with ``xp=torch``), once in
float64 and once in float32. The files have the layout of ``make_torch_golden.py``'s:
``torch_extra_<dtype>.npz`` holds ``name/params/<leaf>`` (and, in float32, ``name/grads/<leaf>``)
as ``(STEPS, n)`` arrays, and ``configs``, a JSON string with each configuration's optimizer, its
full hyperparameters as the optimizer used them, and its learning-rate schedule.

AdaBound is not in ``torch.optim`` and the authors' package (``Luolc/AdaBound``,
``pip install adabound``) is not installable here, so ``AdaBound`` below is their algorithm
written out as a plain ``torch.optim.Optimizer`` loop, following the conventions of their code
that ``/work/shared/REFERENCES.md`` records: raw moments (no bias correction of ``m`` or ``v``),
``step_size = lr · √(1 - β2^t) / (1 - β1^t)`` divided by ``√v + ε`` (AMSBound: the running
maximum of the raw ``v``), clamped into ``[f (1 - 1/(γt + 1)), f (1 + 1/(γt))]`` with
``f = final_lr · lr / base_lr`` (``base_lr``: the group's ``lr`` when the optimizer was built, so
the bounds follow a scheduler's changes), then multiplied by the raw ``m``; weight decay is L2.

Runs are accepted only if they make progress (the loss falls by half), stay finite and are well
conditioned (see ``amplification``), and the AdaBound runs named ``CLIPPED`` must have their
step sizes clipped for a good part of the run (so the golden data test the bounds).

Needs torch and jax (``tests/problems.py`` imports jax); the test suite itself needs no torch::

    python3 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch==2.13.0 numpy jax==0.10.2
    /work/venv-torch/bin/python tests/golden/make_torch_golden_extra.py
"""

from __future__ import annotations

import json
import math
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
MIN_CLIPPED_FRACTION = 0.2


class AdaBound(torch.optim.Optimizer):
    """The authors' AdaBound / AMSBound step (``Luolc/AdaBound``), written out; see the module
    docstring for its conventions. Also counts how many entries the bounds clipped."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3, eps=1e-8,
                 weight_decay=0.0, amsbound=False):
        defaults = dict(lr=lr, betas=betas, final_lr=final_lr, gamma=gamma, eps=eps,
                        weight_decay=weight_decay, amsbound=amsbound)
        super().__init__(params, defaults)
        self.base_lrs = [group["lr"] for group in self.param_groups]
        self.clipped = self.entries = 0

    @torch.no_grad()
    def step(self):
        for group, base_lr in zip(self.param_groups, self.base_lrs):
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    if group["amsbound"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                if group["weight_decay"] != 0:
                    grad = grad.add(p, alpha=group["weight_decay"])
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                if group["amsbound"]:
                    torch.max(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    denom = state["max_exp_avg_sq"].sqrt().add_(group["eps"])
                else:
                    denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"] * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                final_lr = group["final_lr"] * group["lr"] / base_lr
                lower = final_lr * (1 - 1 / (group["gamma"] * t + 1))
                upper = final_lr * (1 + 1 / (group["gamma"] * t))
                unclipped = torch.full_like(denom, step_size).div_(denom)
                clipped = unclipped.clamp(lower, upper)
                self.clipped += int((clipped != unclipped).sum())
                self.entries += clipped.numel()
                p.add_(-clipped.mul_(exp_avg))


OPTIMIZERS = {"RAdam": torch.optim.RAdam, "NAdam": torch.optim.NAdam, "AdaBound": AdaBound}

# name -> (optimizer, keyword arguments, StepLR arguments or None). torch's other arguments keep
# their defaults (NAdam: momentum_decay 4e-3). ``foreach=False`` pins torch's single-tensor loop.
CONFIGS = {
    "radam": ("RAdam", {"lr": 0.05, "foreach": False}, None),
    "radam_weight_decay": ("RAdam", {"lr": 0.05, "weight_decay": 0.1, "foreach": False}, None),
    "radam_decoupled_weight_decay": ("RAdam", {"lr": 0.05, "weight_decay": 0.1,
                                               "decoupled_weight_decay": True,
                                               "foreach": False}, None),
    "nadam": ("NAdam", {"lr": 0.02, "foreach": False}, None),
    "nadam_weight_decay": ("NAdam", {"lr": 0.02, "weight_decay": 0.1, "foreach": False}, None),
    "nadam_decoupled_weight_decay": ("NAdam", {"lr": 0.02, "weight_decay": 0.1,
                                               "decoupled_weight_decay": True,
                                               "foreach": False}, None),
    "adabound": ("AdaBound", {"lr": 0.05}, None),
    "adabound_clipped": ("AdaBound", {"lr": 0.05, "final_lr": 0.05, "gamma": 0.05}, None),
    "adabound_weight_decay": ("AdaBound", {"lr": 0.05, "final_lr": 0.05, "gamma": 0.05,
                                           "weight_decay": 0.1}, None),
    "amsbound_clipped": ("AdaBound", {"lr": 0.05, "final_lr": 0.05, "gamma": 0.05,
                                      "amsbound": True}, None),
    # A scheduler halves the learning rate every 50 steps; the bounds must follow it.
    "adabound_step_lr": ("AdaBound", {"lr": 0.05, "final_lr": 0.05, "gamma": 0.05},
                         {"step_size": 50, "gamma": 0.5}),
}
CLIPPED = {"adabound_clipped", "adabound_weight_decay", "amsbound_clipped", "adabound_step_lr"}


def run(name, dtype, noise=0.0):
    """Closed-loop run of configuration ``name``.

    Returns ``(history, description, loss before, loss after, clipped fraction)``;
    ``history[kind][leaf]`` is a ``(STEPS, n)`` array, ``kind`` ``"params"`` or ``"grads"``.
    ``noise`` > 0 adds ``noise · N(0, 1)`` (fixed seed) to the params after every step.
    """
    optimizer_name, kwargs, step_lr = CONFIGS[name]
    params = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in INITIAL.items()}
    optimizer = OPTIMIZERS[optimizer_name](list(params.values()), **kwargs)
    scheduler = (torch.optim.lr_scheduler.StepLR(optimizer, **step_lr) if step_lr else None)
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
    hyper = {k: v for k, v in optimizer.param_groups[0].items()
             if k not in ("params", "initial_lr")}
    hyper["lr"] = kwargs["lr"]
    description = {"optimizer": optimizer_name, "hyperparams": hyper, "step_lr": step_lr}
    clipped = optimizer.clipped / optimizer.entries if optimizer_name == "AdaBound" else None
    arrays = {kind: {k: torch.stack(v).numpy() for k, v in leaves.items()}
              for kind, leaves in history.items()}
    return arrays, description, first, last, clipped


def amplification(name, params):
    """How far a float64 run with per-step noise ends up from ``params``, per unit of noise:
    a well-conditioned run keeps rounding differences (~1e-16 a step) far below 1e-10."""
    noisy = run(name, torch.float64, NOISE)[0]["params"]
    return max(np.abs(noisy[k] - params[k]).max() for k in params) / NOISE


def main():
    torch.use_deterministic_algorithms(True)
    for dtype_name, dtype in DTYPES.items():
        # NAdam keeps its momentum product in torch's default dtype.
        torch.set_default_dtype(dtype)
        arrays, described = {}, {}
        for name in CONFIGS:
            history, description, first, last, clipped = run(name, dtype)
            finite = all(np.isfinite(a).all() for leaves in history.values()
                         for a in leaves.values())
            if not (finite and last < 0.5 * first):
                raise RuntimeError(f"{name} ({dtype_name}): loss {first:.4g} -> {last:.4g}; "
                                   "choose hyperparameters that make the run move and stay finite")
            if name in CLIPPED and clipped < MIN_CLIPPED_FRACTION:
                raise RuntimeError(f"{name}: only {clipped:.0%} of the step sizes were clipped")
            line = f"{dtype_name:8s} {name:30s} loss {first:7.4f} -> {last:7.4f}"
            if clipped is not None:
                line += f"  clipped {clipped:4.0%}"
            described[name] = description
            kinds = ("params", "grads")
            if dtype == torch.float64:
                kinds = ("params",)
                growth = amplification(name, history["params"])
                if growth > MAX_AMPLIFICATION:
                    raise RuntimeError(f"{name}: per-step noise grows {growth:.3g}-fold; the run "
                                       "is too ill-conditioned for a 1e-10 comparison")
                line += f"  noise amplification {growth:8.3g}"
            print(line)
            for kind in kinds:
                for leaf, values in history[kind].items():
                    arrays[f"{name}/{kind}/{leaf}"] = values
        path = HERE / f"torch_extra_{dtype_name}.npz"
        np.savez_compressed(path, configs=np.array(json.dumps(described, sort_keys=True)),
                            torch_version=np.array(torch.__version__), **arrays)
        size = path.stat().st_size / 1024
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({size:.0f} KiB)")


if __name__ == "__main__":
    main()
