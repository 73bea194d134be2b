"""Golden runs of PyTorch's weight averaging (``torch.optim.swa_utils``) on the shared problem.

``tests/test_averaging.py`` checks gradchain's ``swa``, ``ema_params`` and ``swalr`` against
``torch_averaging.npz``. Each configuration trains ``tests/problems.py``'s loss (evaluated with
``xp=torch``) in float64 for ``STEPS`` updates of ``SGD(lr, momentum=0.9)``, with:

- the learning rate of ``CosineAnnealingLR(T_max)`` stepped after each of the first
  ``SWA_START`` updates, then of ``SWALR(swa_lr, anneal_epochs, anneal_strategy)`` stepped after
  each later one (both built before training, as in PyTorch's documentation);
- ``AveragedModel(model)`` (SWA) updated after update ``t`` (from 1) when ``t > SWA_START`` and
  ``t % SWA_FREQ == 0``;
- ``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(EMA_DECAY))`` updated after every
  update.

The file holds ``name/<kind>/<leaf>`` ``(STEPS, n)`` arrays (``params``, ``swa`` and ``ema``:
the params and the two averages after each update), ``name/lr`` (the learning rate each update
used) and ``name/n_averaged``, plus ``configs`` (JSON) and ``torch_version``. Needs torch and jax
(``tests/problems.py`` imports jax)::

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch==2.13.0 numpy jax==0.10.2
    /tmp/venv-torch/bin/python tests/golden/make_torch_averaging.py
"""

import json
import pathlib
import sys

import numpy as np
import torch
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent)]

from problems import INITIAL, loss  # noqa: E402

STEPS = 60
SWA_START = 30
SWA_FREQ = 2
EMA_DECAY = 0.9
CONFIGS = {
    "cos": dict(lr=0.02, T_max=40, swa_lr=0.005, anneal_epochs=10, anneal_strategy="cos"),
    "linear": dict(lr=0.02, T_max=40, swa_lr=0.03, anneal_epochs=7, anneal_strategy="linear"),
}


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        for k, v in INITIAL.items():
            self.register_parameter(k, torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)))

    def leaves(self):
        return {k: getattr(self, k) for k in INITIAL}


def run(lr, T_max, swa_lr, anneal_epochs, anneal_strategy):
    model = Model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    swa_model = AveragedModel(model)
    ema_model = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(EMA_DECAY))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=T_max)
    swa_scheduler = SWALR(optimizer, swa_lr=swa_lr, anneal_epochs=anneal_epochs,
                          anneal_strategy=anneal_strategy)
    out = {kind: {k: [] for k in INITIAL} for kind in ("params", "swa", "ema")}
    out["lr"], out["n_averaged"] = [], []
    for t in range(1, STEPS + 1):
        out["lr"].append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad()
        loss(model.leaves(), xp=torch).backward()
        optimizer.step()
        ema_model.update_parameters(model)
        if t > SWA_START and t % SWA_FREQ == 0:
            swa_model.update_parameters(model)
        (scheduler if t <= SWA_START else swa_scheduler).step()
        for kind, source in (("params", model), ("swa", swa_model.module),
                             ("ema", ema_model.module)):
            for k in INITIAL:
                out[kind][k].append(getattr(source, k).detach().clone().numpy())
        out["n_averaged"].append(int(swa_model.n_averaged))
    return out


def main():
    arrays = {}
    for name, config in CONFIGS.items():
        out = run(**config)
        for kind in ("params", "swa", "ema"):
            for k, values in out[kind].items():
                arrays[f"{name}/{kind}/{k}"] = np.stack(values)
        arrays[f"{name}/lr"] = np.array(out["lr"])
        arrays[f"{name}/n_averaged"] = np.array(out["n_averaged"])
        print(f"{name:8s} lr {out['lr'][0]:.4g} -> {out['lr'][-1]:.4g}, "
              f"{out['n_averaged'][-1]} averaged")
    described = {"steps": STEPS, "swa_start": SWA_START, "swa_freq": SWA_FREQ,
                 "ema_decay": EMA_DECAY, "momentum": 0.9, "configs": CONFIGS}
    path = HERE / "torch_averaging.npz"
    np.savez_compressed(path, configs=np.array(json.dumps(described, sort_keys=True)),
                        torch_version=np.array(torch.__version__), **arrays)
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
