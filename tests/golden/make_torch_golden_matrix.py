"""Golden trajectories of ``torch.optim.Adafactor`` and ``torch.optim.Muon`` on matrix params.

``tests/test_torch_parity_matrix.py`` checks gradchain's ``adafactor`` and ``muon`` (with their
torch-convention options) against these files. Each configuration runs ``STEPS`` closed-loop
steps on the matrix problem of ``tests/matrix_problem.py`` (a 6×4 matrix ``w``, a vector ``b``,
a 2×3×5 ``k``; the same ``loss``, evaluated with ``xp=torch``), once in float64 and once in
float32. The run, its checks and the file layout are ``torch_runs.py``'s (its problem is swapped
for the matrix one below), except that each leaf's trajectory is stored flattened, as
``(STEPS, size)`` arrays: ``torch_matrix_<dtype>.npz``.

``torch.optim.Muon`` takes only 2-D params; the other leaves get ``torch.optim.AdamW`` with
Muon's learning rate and ε, which is how gradchain's (and Optax's) ``muon`` treats them.
``torch.optim.Muon`` runs its Newton-Schulz iteration in bfloat16, whose rounding no other
implementation reproduces (measured: a bfloat16 twin in JAX is as far from torch's run, 6e-2, as
a float64 one); the configurations here run torch's very iteration in the params' dtype
(``full_precision`` below, torch's function without the cast), the data a float64 comparison
at 1e-10 needs.

Needs torch and jax (``tests/matrix_problem.py`` imports jax); the test suite itself needs no
torch::

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch==2.13.0 numpy jax==0.10.2
    /tmp/venv-torch/bin/python tests/golden/make_torch_golden_matrix.py
"""

import torch
import torch.optim._muon as torch_muon

import torch_runs
from torch_runs import DTYPES, hyperparameters, record, save

import matrix_problem

torch_runs.INITIAL, torch_runs.loss = matrix_problem.INITIAL, matrix_problem.loss

TORCH_NEWTON_SCHULZ = torch_muon._zeropower_via_newtonschulz


def full_precision(grad, ns_coefficients, ns_steps, eps):
    """torch's Newton-Schulz iteration (``torch.optim._muon``) in the dtype of ``grad``."""
    a, b, c = ns_coefficients
    x = grad.T if grad.size(0) > grad.size(1) else grad.clone()
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


class MuonAdamW:
    """``torch.optim.Muon`` on the 2-D params (its iteration in their dtype: ``full_precision``)
    and ``torch.optim.AdamW`` on the others, stepped together."""

    def __init__(self, params, muon, adamw):
        self.muon = torch.optim.Muon([p for p in params if p.ndim == 2], **muon)
        self.adamw = torch.optim.AdamW([p for p in params if p.ndim != 2], **adamw)
        self.param_groups = self.muon.param_groups

    def zero_grad(self):
        self.muon.zero_grad()
        self.adamw.zero_grad()

    def step(self):
        torch_muon._zeropower_via_newtonschulz = full_precision
        try:
            self.muon.step()
        finally:
            torch_muon._zeropower_via_newtonschulz = TORCH_NEWTON_SCHULZ
        self.adamw.step()


def muon(lr, **kwargs):
    """Muon (torch's defaults but ``kwargs``) beside AdamW with the same lr and ε."""
    eps = kwargs.get("eps", torch_muon.EPS)
    return lambda params: (MuonAdamW(params, {"lr": lr, **kwargs},
                                     {"lr": lr, "eps": eps, "weight_decay": 0.1,
                                      "foreach": False}), None)


def adafactor(**kwargs):
    return lambda params: (torch.optim.Adafactor(params, foreach=False, **kwargs), None)


# name -> build. torch's other arguments keep their defaults.
CONFIGS = {
    "adafactor": adafactor(lr=0.01),
    # 1/√t falls below the learning rate from the 5th step: the relative step size takes over.
    "adafactor_relative_step": adafactor(lr=0.5, eps=(None, 0.01), d=2.0, weight_decay=0.05),
    "muon": muon(0.01),
    "muon_plain_momentum_match_rms_adamw": muon(0.01, nesterov=False, weight_decay=0.0,
                                                adjust_lr_fn="match_rms_adamw"),
}


def describe(name, optimizer):
    if isinstance(optimizer, MuonAdamW):
        return {"optimizer": "Muon", "hyperparams": hyperparameters(optimizer.muon),
                "adamw": hyperparameters(optimizer.adamw)}
    return {"optimizer": "Adafactor", "hyperparams": hyperparameters(optimizer)}


def main():
    torch.use_deterministic_algorithms(True)
    for dtype_name, dtype in DTYPES.items():
        torch.set_default_dtype(dtype)
        arrays, described = {}, {}
        for name, build in CONFIGS.items():
            optimizer = record(arrays, name, dtype_name, build)
            described[name] = describe(name, optimizer)
        flat = {key: value.reshape(value.shape[0], -1) for key, value in arrays.items()}
        save(f"torch_matrix_{dtype_name}.npz", described, flat)


if __name__ == "__main__":
    main()
