"""Generate the golden learning-rate sequences of ``torch.optim.lr_scheduler`` that
``tests/test_schedules.py`` and ``tests/test_plateau.py`` check.

Writes, next to this file:

- ``torch_schedules.npz``: per configuration ``name``, ``name/lr`` (and ``name/momentum`` for
  the cycles) with the value in the optimizer's param group *before* each ``optimizer.step()``,
  for ``steps`` steps (step 0 first); ``configs``: JSON ``{name: [scheduler class, keyword
  arguments, base lr, steps]}``. One-cycle runs record ``total_steps + 1`` values: PyTorch
  computes one value past the last step and raises if stepped again.
- ``torch_plateau.npz``: per loss sequence ``seq`` the metrics ``seq/metrics``, and per
  configuration ``cfg`` run on it ``seq/cfg/{lr,best,num_bad,cooldown}``: the scheduler's state
  *after* ``scheduler.step(metric)`` at each step (base lr 1, so the lr is the scale);
  ``plateau_configs``: JSON ``{cfg: keyword arguments}``.
- ``torch_cycled_momentum.npz``: params trajectories of ``SGD(momentum)`` and ``Adam`` whose
  learning rate and momentum / ``betas[0]`` follow ``OneCycleLR`` and ``CyclicLR``, on the
  small quadratic-plus-quartic problem ``QUADRATIC`` (defined here in NumPy so that the test
  rebuilds it in JAX).

Needs only torch and numpy; the test suite needs neither torch nor this script. Regenerate
(see BUILD.md, "Golden trajectories")::

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch==2.13.0 numpy
    /tmp/venv-torch/bin/python tests/golden/make_torch_schedules.py
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
STEPS = 2400

# name -> (scheduler class, keyword arguments, base lr, steps). Edge configurations: a milestone
# at step 0 and a repeated one, a decay every step, the end of every finite schedule and 400
# steps past it, restarts with T_mult 1, 2 and 3, asymmetric cycles, fractional one-cycle phase
# boundaries (total_steps odd), and the short sequences quoted in REFERENCES.md.
SCHEDULES = {
    "step_lr": ("StepLR", {"step_size": 200, "gamma": 0.5}, 1.0, STEPS),
    "step_lr_every_step": ("StepLR", {"step_size": 1, "gamma": 0.997}, 0.1, STEPS),
    "step_lr_reference": ("StepLR", {"step_size": 3, "gamma": 0.5}, 1.0, 7),
    "multi_step_lr": ("MultiStepLR", {"milestones": [1000, 0, 300, 300, 2399], "gamma": 0.3},
                      1.0, STEPS),
    "multi_step_lr_reference": ("MultiStepLR", {"milestones": [2, 5], "gamma": 0.1}, 1.0, 6),
    "exponential_lr": ("ExponentialLR", {"gamma": 0.998}, 1.0, STEPS),
    "constant_lr": ("ConstantLR", {"factor": 0.25, "total_iters": 500}, 0.3, STEPS),
    "polynomial_lr": ("PolynomialLR", {"total_iters": 2000, "power": 2.0}, 1.0, STEPS),
    "polynomial_lr_sqrt": ("PolynomialLR", {"total_iters": 1000, "power": 0.5}, 0.5, STEPS),
    "linear_lr_warmup": ("LinearLR", {"start_factor": 0.01, "end_factor": 1.0,
                                      "total_iters": 1000}, 0.1, STEPS),
    "linear_lr_decay": ("LinearLR", {"start_factor": 1.0, "end_factor": 0.0,
                                     "total_iters": 2000}, 1.0, STEPS),
    "cosine_annealing_lr": ("CosineAnnealingLR", {"T_max": 2000, "eta_min": 0.001}, 0.1,
                            STEPS),
    "cosine_annealing_lr_short": ("CosineAnnealingLR", {"T_max": 300, "eta_min": 0.0}, 1.0,
                                  STEPS),
    "cosine_annealing_lr_reference": ("CosineAnnealingLR", {"T_max": 4}, 1.0, 5),
    "warm_restarts": ("CosineAnnealingWarmRestarts", {"T_0": 100, "T_mult": 2,
                                                      "eta_min": 1e-4}, 0.1, STEPS),
    "warm_restarts_mult1": ("CosineAnnealingWarmRestarts", {"T_0": 250, "T_mult": 1}, 1.0,
                            STEPS),
    "warm_restarts_mult3": ("CosineAnnealingWarmRestarts", {"T_0": 10, "T_mult": 3,
                                                            "eta_min": 0.05}, 1.0, STEPS),
    "warm_restarts_reference": ("CosineAnnealingWarmRestarts", {"T_0": 2, "T_mult": 2}, 1.0,
                                8),
    "cyclic_triangular": ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 250},
                          0.01, STEPS),
    "cyclic_triangular2": ("CyclicLR", {"base_lr": 0.1, "max_lr": 1.0, "step_size_up": 150,
                                        "step_size_down": 250, "mode": "triangular2",
                                        "base_momentum": 0.85, "max_momentum": 0.95},
                           0.1, STEPS),
    "cyclic_exp_range": ("CyclicLR", {"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 100,
                                      "step_size_down": 70, "mode": "exp_range",
                                      "gamma": 0.9995}, 0.001, STEPS),
    "cyclic_reference": ("CyclicLR", {"base_lr": 0.1, "max_lr": 1.0, "step_size_up": 2,
                                      "mode": "triangular2"}, 0.1, 10),
    "one_cycle": ("OneCycleLR", {"max_lr": 0.1, "total_steps": 2000}, 0.1, 2001),
    "one_cycle_linear": ("OneCycleLR", {"max_lr": 1.0, "total_steps": 2000, "pct_start": 0.25,
                                        "anneal_strategy": "linear", "div_factor": 10.0,
                                        "final_div_factor": 100.0}, 1.0, 2001),
    "one_cycle_three_phase": ("OneCycleLR", {"max_lr": 0.5, "total_steps": 2001,
                                             "three_phase": True, "base_momentum": 0.8,
                                             "max_momentum": 0.9}, 0.5, 2002),
    "one_cycle_reference": ("OneCycleLR", {"max_lr": 1.0, "total_steps": 10}, 1.0, 11),
}

# ReduceLROnPlateau: loss sequences and configurations (PyTorch's keyword arguments).
PLATEAU_LENGTH = 400


def plateau_sequences() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(PLATEAU_LENGTH, dtype=np.float64)
    noisy = np.exp(-t / 120) + 0.02 * rng.standard_normal(t.size)
    with_nan = noisy.copy()
    with_nan[[50, 51, 200]] = np.nan
    return {
        "flat": np.full(t.size, 0.7),
        "noisy": noisy,
        "improving": 1.0 / (1.0 + t),
        "oscillating": 1.0 + 0.5 * np.exp(-t / 200) * np.sin(t / 4),
        "negative": -2.0 + np.exp(-t / 60) + 0.002 * rng.standard_normal(t.size),
        "with_nan": with_nan,
    }


PLATEAU_CONFIGS = {
    "default": {},
    "abs_cooldown": {"factor": 0.5, "patience": 3, "threshold": 0.01, "threshold_mode": "abs",
                     "cooldown": 5, "min_lr": 0.01},
    "rel_coarse": {"factor": 0.3, "patience": 5, "threshold": 0.05, "cooldown": 2},
    "impatient_eps": {"factor": 0.9, "patience": 0, "threshold": 0.0, "min_lr": 0.5,
                      "eps": 0.02},
    "max_mode": {"mode": "max", "factor": 0.5, "patience": 4, "threshold": 0.01},
    "max_mode_abs": {"mode": "max", "factor": 0.5, "patience": 4, "threshold": 0.001,
                     "threshold_mode": "abs", "cooldown": 3},
}

# The problem of the cycled-momentum trajectories: 0.5 Σ a (x - c)² + 0.05 Σ x⁴ from x = 0.
QUADRATIC = {"a": [1.0, 2.0, 5.0, 0.5, 3.0], "c": [1.0, -2.0, 0.5, 3.0, -1.0]}
TRAJECTORY_STEPS = 300
TRAJECTORIES = {
    # name -> (optimizer class, optimizer kwargs, scheduler class, scheduler kwargs)
    "sgd_one_cycle": ("SGD", {"lr": 0.1, "momentum": 0.9},
                      "OneCycleLR", {"max_lr": 0.1, "total_steps": TRAJECTORY_STEPS}),
    "sgd_cyclic": ("SGD", {"lr": 0.01, "momentum": 0.9},
                   "CyclicLR", {"base_lr": 0.01, "max_lr": 0.08, "step_size_up": 40,
                                "step_size_down": 60, "mode": "triangular2"}),
    "adam_one_cycle": ("Adam", {"lr": 0.05}, "OneCycleLR",
                       {"max_lr": 0.05, "total_steps": TRAJECTORY_STEPS, "three_phase": True}),
}


def dummy_optimizer(lr: float) -> torch.optim.Optimizer:
    """An SGD with momentum (so that the cycles can write their momentum) over one unused
    parameter: only its param group's values are read."""
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)


def record_schedule(cls: str, kwargs: dict, lr: float, steps: int):
    optimizer = dummy_optimizer(lr)
    scheduler = getattr(torch.optim.lr_scheduler, cls)(optimizer, **kwargs)
    lrs, momenta = [], []
    for t in range(steps):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        momenta.append(float(optimizer.param_groups[0]["momentum"]))
        optimizer.step()
        if t < steps - 1:
            scheduler.step()
    return np.asarray(lrs), np.asarray(momenta)


def record_plateau(metrics: np.ndarray, kwargs: dict) -> dict[str, np.ndarray]:
    optimizer = dummy_optimizer(1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
    out = {"lr": [], "best": [], "num_bad": [], "cooldown": []}
    for metric in metrics:
        optimizer.step()
        scheduler.step(float(metric))
        out["lr"].append(float(optimizer.param_groups[0]["lr"]))
        out["best"].append(float(scheduler.best))
        out["num_bad"].append(scheduler.num_bad_epochs)
        out["cooldown"].append(scheduler.cooldown_counter)
    return {k: np.asarray(v) for k, v in out.items()}


def quadratic_loss(x: torch.Tensor) -> torch.Tensor:
    a = torch.tensor(QUADRATIC["a"], dtype=x.dtype)
    c = torch.tensor(QUADRATIC["c"], dtype=x.dtype)
    return 0.5 * torch.sum(a * (x - c) ** 2) + 0.05 * torch.sum(x ** 4)


def record_trajectory(opt_cls, opt_kwargs, sched_cls, sched_kwargs) -> np.ndarray:
    x = torch.zeros(len(QUADRATIC["a"]), dtype=torch.float64, requires_grad=True)
    optimizer = getattr(torch.optim, opt_cls)([x], **opt_kwargs)
    scheduler = getattr(torch.optim.lr_scheduler, sched_cls)(optimizer, **sched_kwargs)
    xs = []
    for _ in range(TRAJECTORY_STEPS):
        optimizer.zero_grad()
        quadratic_loss(x).backward()
        optimizer.step()
        scheduler.step()
        xs.append(x.detach().numpy().copy())
    return np.asarray(xs)


def main() -> None:
    arrays = {}
    for name, (cls, kwargs, lr, steps) in SCHEDULES.items():
        lrs, momenta = record_schedule(cls, kwargs, lr, steps)
        arrays[f"{name}/lr"] = lrs
        if cls in ("CyclicLR", "OneCycleLR"):
            arrays[f"{name}/momentum"] = momenta
    arrays["configs"] = np.asarray(json.dumps(SCHEDULES))
    np.savez_compressed(HERE / "torch_schedules.npz", **arrays)

    arrays = {"plateau_configs": np.asarray(json.dumps(PLATEAU_CONFIGS))}
    for seq, metrics in plateau_sequences().items():
        arrays[f"{seq}/metrics"] = metrics
        for cfg, kwargs in PLATEAU_CONFIGS.items():
            for key, values in record_plateau(metrics, kwargs).items():
                arrays[f"{seq}/{cfg}/{key}"] = values
        # The documented fix: min mode on a negative sequence equals torch's max mode on the
        # negated one (whose best is positive, where torch's relative threshold is right).
        for key, values in record_plateau(-metrics, {"mode": "max"}).items():
            arrays[f"{seq}/negated_max/{key}"] = values
    np.savez_compressed(HERE / "torch_plateau.npz", **arrays)

    arrays = {"quadratic": np.asarray(json.dumps(QUADRATIC)),
              "trajectories": np.asarray(json.dumps(TRAJECTORIES))}
    for name, spec in TRAJECTORIES.items():
        xs = record_trajectory(*spec)
        assert np.all(np.isfinite(xs)), name
        arrays[name] = xs
    np.savez_compressed(HERE / "torch_cycled_momentum.npz", **arrays)

    reductions = sum(int(np.sum(np.diff(np.r_[1.0, v]) < 0))
                     for k, v in np.load(HERE / "torch_plateau.npz").items() if k.endswith("/lr"))
    print(f"{len(SCHEDULES)} schedules, {len(PLATEAU_CONFIGS)} plateau configurations on "
          f"{len(plateau_sequences())} sequences ({reductions} reductions in all), "
          f"{len(TRAJECTORIES)} trajectories; torch {torch.__version__}")


if __name__ == "__main__":
    main()
