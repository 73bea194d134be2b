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
every number, defaults included, from here. The run, its checks and the file layout are
``torch_runs.py``'s, shared with the other generators.

Needs torch and jax (``tests/problems.py`` imports jax); the test suite itself needs no torch.
Regenerate (see BUILD.md, "Golden trajectories")::

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch==2.13.0 numpy jax==0.10.2
    /tmp/venv-torch/bin/python tests/golden/make_torch_golden.py
"""

import torch

from torch_runs import DTYPES, hyperparameters, record, save

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
    # RMSProp's step γ·g/(√v + ε) does not shrink with the gradient: near the minimum v decays with
    # g², the effective step γ/√v grows, and the iteration starts to oscillate. There the run is
    # chaotic and no two correct implementations agree past rounding (at lr 0.01, plain and centred,
    # ``torch_runs.amplification`` measures 3e11). Centred RMSProp is the more fragile: its
    # denominator √(v - ḡ²) + ε cancels as ḡ² approaches v. The learning rates below keep all five
    # runs out of that regime for 200 steps (amplification < 20; ``record`` checks it, see
    # ``torch_runs.MAX_AMPLIFICATION``). torch's default ε = 1e-8 is kept, the setting people run:
    # in these runs v - ḡ² stays above 0.4·v, so the cancellation costs no digits, and no larger ε
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


def build(optimizer_name, kwargs):
    """``torch_runs``' ``build`` for ``torch.optim.<optimizer_name>(**kwargs)``, no scheduler."""
    return lambda params: (getattr(torch.optim, optimizer_name)(params, **kwargs), None)


def main():
    torch.use_deterministic_algorithms(True)
    for dtype_name in DTYPES:
        arrays, described = {}, {}
        for name, (optimizer_name, kwargs) in CONFIGS.items():
            optimizer = record(arrays, name, dtype_name, build(optimizer_name, kwargs))
            described[name] = {"optimizer": optimizer_name,
                               "hyperparams": hyperparameters(optimizer)}
        save(f"torch_{dtype_name}.npz", described, arrays)


if __name__ == "__main__":
    main()
