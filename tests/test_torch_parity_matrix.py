"""Adafactor and Muon with torch's conventions against ``torch.optim.Adafactor`` and
``torch.optim.Muon`` (torch 2.13).

``tests/golden/make_torch_golden_matrix.py`` records 200 closed-loop steps of each configuration
on the matrix problem of ``tests/matrix_problem.py`` (float64 params; float32 params and
gradients), with the full hyperparameters. Each is rebuilt here from those numbers with the
gradchain call ``EQUIVALENTS`` names, and:

- float64, closed loop: params within 1e-10 relative error (measured: <= 5e-13);
- float32, open loop on torch's recorded gradients: params within 1e-5.

torch's Muon runs its Newton-Schulz iteration in bfloat16; the generator records it in the
params' dtype (see its docstring): ``ns_dtype=jnp.bfloat16`` is tested in
``test_matrix_optimizers.py``.

``CONVENTION_OFF`` shows each torch option matters: turned off, the comparison fails.
"""

import jax
import jax.numpy as jnp
import pytest

import gradchain as gc
from golden_files import FLOAT32_BOUND, FLOAT64_BOUND, golden, load_golden
from matrix_problem import trajectory
from problems import max_relative_error

# Float32 Newton-Schulz iterations are compared at 1e-5, measured on XLA's optimized code
# (tests/conftest.py).
pytestmark = pytest.mark.optimized_xla

CONFIGS, FLOAT64 = load_golden("torch_matrix_float64.npz")
FLOAT32 = load_golden("torch_matrix_float32.npz")[1]


def torch_adafactor(config, **overrides):
    hp = config["hyperparams"]
    # torch computes β2_t in float64: an array decay rate keeps its precision (a Python number
    # gives Optax's float32 β2_t).
    kwargs = dict(min_dim_size_to_factor=1,
                  decay_rate=jnp.asarray(-hp["beta2_decay"], jnp.float64),
                  clipping_threshold=hp["d"], relative_step=True, min_scale=hp["eps"][1],
                  weight_decay_rate=hp["lr"] * hp["weight_decay"] or None)
    return gc.adafactor(hp["lr"], **{**kwargs, **overrides})


def torch_layout(params):
    """torch's ``(out, in)`` weights: the reduction (input) axis is 1; only matrices."""
    return jax.tree.map(lambda x: gc.MuonDimensionNumbers(1, 0) if x.ndim == 2 else None,
                        params)


def torch_muon(config, **overrides):
    hp, adamw = config["hyperparams"], config["adamw"]
    kwargs = dict(
        ns_coeffs=tuple(hp["ns_coefficients"]), ns_steps=hp["ns_steps"], beta=hp["momentum"],
        eps=hp["eps"], weight_decay=hp["weight_decay"], nesterov=hp["nesterov"],
        consistent_rms=0.2 if hp["adjust_lr_fn"] == "match_rms_adamw" else None,
        adam_b1=adamw["betas"][0], adam_b2=adamw["betas"][1],
        adam_weight_decay=adamw["weight_decay"], adam_learning_rate=adamw["lr"],
        muon_weight_dimension_numbers=torch_layout, bias_correction=False, eps_floor=True,
        adam_nesterov=False)
    assert adamw["eps"] == hp["eps"]  # gradchain's (and Optax's) muon shares ε with Adam
    return gc.muon(hp["lr"], **{**kwargs, **overrides})


EQUIVALENTS = {
    "adafactor": torch_adafactor,
    "adafactor_relative_step": torch_adafactor,
    "muon": torch_muon,
    "muon_plain_momentum_match_rms_adamw": torch_muon,
}

CONVENTION_OFF = [
    ("adafactor_relative_step", "relative step", lambda c: torch_adafactor(c, relative_step=False)),
    ("adafactor_relative_step", "decay scaled by the learning rate",
     lambda c: torch_adafactor(c, weight_decay_rate=c["hyperparams"]["weight_decay"])),
    ("muon", "uncorrected momentum", lambda c: torch_muon(c, bias_correction=True)),
    ("muon", "ε as a floor of the norm", lambda c: torch_muon(c, eps_floor=False)),
    ("muon", "torch's (out, in) layout", lambda c: torch_muon(
        c, muon_weight_dimension_numbers=None)),
    ("muon", "AdamW without Nesterov", lambda c: torch_muon(c, adam_nesterov=None)),
]


def closed_loop_error(tx, name):
    params, _ = trajectory(tx, jnp.float64)
    return max_relative_error(params, golden(FLOAT64, name, "params"))


def test_every_golden_configuration_has_an_equivalent():
    assert set(EQUIVALENTS) == set(CONFIGS)


@pytest.mark.parametrize("name", sorted(EQUIVALENTS))
def test_float64_closed_loop_matches_torch(name):
    error = closed_loop_error(EQUIVALENTS[name](CONFIGS[name]), name)
    assert error <= FLOAT64_BOUND, f"{name}: relative error {error:.3g}"


@pytest.mark.parametrize("name", sorted(EQUIVALENTS))
def test_float32_open_loop_matches_torch(name):
    params, _ = trajectory(EQUIVALENTS[name](CONFIGS[name]), jnp.float32,
                           grads=golden(FLOAT32, name, "grads"))
    assert all(leaf.dtype == jnp.float32 for leaf in params.values())
    error = max_relative_error(params, golden(FLOAT32, name, "params"))
    assert error <= FLOAT32_BOUND, f"{name}: relative error {error:.3g}"


@pytest.mark.parametrize("name, what, build", CONVENTION_OFF,
                         ids=[f"{name}-{what}" for name, what, _ in CONVENTION_OFF])
def test_turning_a_convention_off_fails_the_comparison(name, what, build):
    error = closed_loop_error(build(CONFIGS[name]), name)
    assert error > 100 * FLOAT64_BOUND, f"{name} without {what}: relative error {error:.3g}"
