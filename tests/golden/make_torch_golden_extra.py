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
conditioned (see ``torch_runs.amplification``), and the AdaBound runs named ``CLIPPED`` must have
their step sizes clipped for a good part of the run (so the golden data test the bounds). The run,
its checks and the file layout are ``torch_runs.py``'s, shared with ``make_torch_golden.py``.

Needs torch and jax (``tests/problems.py`` imports jax); the test suite itself needs no torch::

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch==2.13.0 numpy jax==0.10.2
    /tmp/venv-torch/bin/python tests/golden/make_torch_golden_extra.py
"""

import math

import torch

from torch_runs import DTYPES, hyperparameters, record, save

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


def build(name):
    """``torch_runs``' ``build`` for configuration ``name``: its optimizer and StepLR, if any."""
    optimizer_name, kwargs, step_lr = CONFIGS[name]

    def optimizer_and_scheduler(params):
        optimizer = OPTIMIZERS[optimizer_name](params, **kwargs)
        return optimizer, (torch.optim.lr_scheduler.StepLR(optimizer, **step_lr) if step_lr
                           else None)

    return optimizer_and_scheduler


def clipping(name):
    """``record``'s check: the fraction of AdaBound's step sizes the bounds clipped, which must
    be at least ``MIN_CLIPPED_FRACTION`` for the configurations in ``CLIPPED``."""

    def check(optimizer):
        if not isinstance(optimizer, AdaBound):
            return ""
        clipped = optimizer.clipped / optimizer.entries
        if name in CLIPPED and clipped < MIN_CLIPPED_FRACTION:
            raise RuntimeError(f"{name}: only {clipped:.0%} of the step sizes were clipped")
        return f"  clipped {clipped:4.0%}"

    return check


def main():
    torch.use_deterministic_algorithms(True)
    for dtype_name, dtype in DTYPES.items():
        # NAdam keeps its momentum product in torch's default dtype.
        torch.set_default_dtype(dtype)
        arrays, described = {}, {}
        for name, (optimizer_name, kwargs, step_lr) in CONFIGS.items():
            optimizer = record(arrays, name, dtype_name, build(name), check=clipping(name))
            # The learning rate as given: a scheduler has changed the group's.
            hyper = {**hyperparameters(optimizer), "lr": kwargs["lr"]}
            described[name] = {"optimizer": optimizer_name, "hyperparams": hyper,
                               "step_lr": step_lr}
        save(f"torch_extra_{dtype_name}.npz", described, arrays)


if __name__ == "__main__":
    main()
