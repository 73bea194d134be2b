"""Parity with ``torch.optim``: gradchain's torch-convention options against golden trajectories.

``tests/golden/make_torch_golden.py`` (run with torch; see BUILD.md, "Golden trajectories")
records 200 steps of each torch configuration on the shared problem of ``problems.py``, in
float64 and float32, together with torch's full hyperparameters. Here each configuration is
rebuilt from those hyperparameters with the gradchain call that ``TORCH_EQUIVALENTS`` names, and:

- float64, closed loop (gradchain computes its own gradients): params within 1e-10;
- float32, open loop (fed torch's recorded gradients): params within 1e-5.

``CONVENTION_OFF`` shows each torch-convention option matters: turned off, the comparison fails.
"""

import numpy as np
import pytest

import jax
import jax.numpy as jnp
import optax

import gradchain as gc
from golden_files import FLOAT32_BOUND, FLOAT64_BOUND, GoldenTrajectories

TORCH = GoldenTrajectories("torch")
CONFIGS = TORCH.configs


# The gradchain equivalent of each ``torch.optim`` class, built from torch's full hyperparameters
# ``hp`` (``param_groups[0]``, as recorded in the golden files). ``overrides`` replace gradchain
# arguments, to turn a torch convention off.

def torch_sgd(hp):
    return gc.sgd(hp["lr"], hp["momentum"] or None, hp["nesterov"], dampening=hp["dampening"],
                  weight_decay=hp["weight_decay"])


def adagrad_learning_rate(hp):
    """torch Adagrad's ``lr / (1 + (step - 1) · lr_decay)`` (step from 1) as a schedule of
    gradchain's count (0 at the first update); the plain ``lr`` without decay."""
    lr, lr_decay = hp["lr"], hp["lr_decay"]
    return (lambda count: lr / (1 + count * lr_decay)) if lr_decay else lr


def torch_adagrad(hp, learning_rate=None, **overrides):
    kwargs = dict(initial_accumulator_value=hp["initial_accumulator_value"], eps=hp["eps"],
                  eps_in_sqrt=False, weight_decay=hp["weight_decay"])
    return gc.adagrad(learning_rate or adagrad_learning_rate(hp), **{**kwargs, **overrides})


def torch_rmsprop(hp, **overrides):
    kwargs = dict(decay=hp["alpha"], eps=hp["eps"], eps_in_sqrt=False,
                  centered=hp["centered"], momentum=hp["momentum"] or None,
                  weight_decay=hp["weight_decay"])
    return gc.rmsprop(hp["lr"], **{**kwargs, **overrides})


def torch_adadelta(hp):
    return gc.adadelta(hp["lr"], hp["rho"], hp["eps"], hp["weight_decay"])


def torch_adam(hp, **overrides):
    """``Adam``, with its ``amsgrad=True`` as ``gc.amsgrad(max_on_raw=True)``; L2 decay."""
    if hp["amsgrad"]:
        kwargs = dict(max_on_raw=True, weight_decay=hp["weight_decay"])
        return gc.amsgrad(hp["lr"], *hp["betas"], hp["eps"], **{**kwargs, **overrides})
    return gc.adam(hp["lr"], *hp["betas"], hp["eps"], weight_decay=hp["weight_decay"])


def torch_adamw(hp):
    return gc.adamw(hp["lr"], *hp["betas"], hp["eps"], weight_decay=hp["weight_decay"])


# Configuration name (as in the golden files) -> its gradchain equivalent.
TORCH_EQUIVALENTS = {
    "sgd": torch_sgd,
    "sgd_momentum": torch_sgd,
    "sgd_nesterov": torch_sgd,
    "sgd_dampening": torch_sgd,
    "sgd_momentum_weight_decay": torch_sgd,
    "adagrad": torch_adagrad,
    "adagrad_lr_decay_weight_decay": torch_adagrad,
    "rmsprop": torch_rmsprop,
    "rmsprop_centered": torch_rmsprop,
    "rmsprop_momentum": torch_rmsprop,
    "rmsprop_centered_momentum": torch_rmsprop,
    "rmsprop_weight_decay": torch_rmsprop,
    "adadelta": torch_adadelta,
    "adadelta_weight_decay": torch_adadelta,
    "adam": torch_adam,
    "adam_weight_decay": torch_adam,
    "adam_amsgrad": torch_adam,
    "adamw": torch_adamw,
}

# (configuration, the change, its equivalent with the change): each replaces a torch convention
# by another library's (or by an off-by-one), and must fail the comparison.
CONVENTION_OFF = [
    ("adagrad", "eps_in_sqrt=True", lambda hp: torch_adagrad(hp, eps_in_sqrt=True)),
    ("adagrad", "initial_accumulator_value=0.1 (Optax)",
     lambda hp: torch_adagrad(hp, initial_accumulator_value=0.1)),
    ("adagrad_lr_decay_weight_decay", "lr_decay schedule counted from 1",
     lambda hp: torch_adagrad(hp, learning_rate=lambda count: hp["lr"] / (
         1 + (count + 1) * hp["lr_decay"]))),
    ("rmsprop", "eps_in_sqrt=True", lambda hp: torch_rmsprop(hp, eps_in_sqrt=True)),
    ("rmsprop_centered", "eps_in_sqrt=True", lambda hp: torch_rmsprop(hp, eps_in_sqrt=True)),
    ("adam_amsgrad", "max_on_raw=False (Optax)", lambda hp: torch_adam(hp, max_on_raw=False)),
    ("adamw", "L2 decay (Adam's) instead of decoupled", lambda hp: torch_adam(hp)),
]


def test_every_golden_configuration_has_an_equivalent():
    assert set(TORCH_EQUIVALENTS) == set(CONFIGS)
    assert {name for name, _, _ in CONVENTION_OFF} <= set(CONFIGS)


@pytest.mark.parametrize("name", sorted(TORCH_EQUIVALENTS))
def test_float64_closed_loop_matches_torch(name):
    tx = TORCH_EQUIVALENTS[name](CONFIGS[name]["hyperparams"])
    error = TORCH.closed_loop_error(tx, name)
    assert error <= FLOAT64_BOUND, f"{name}: relative error {error:.3g}"


@pytest.mark.parametrize("name", sorted(TORCH_EQUIVALENTS))
def test_float32_open_loop_matches_torch(name):
    tx = TORCH_EQUIVALENTS[name](CONFIGS[name]["hyperparams"])
    params, error = TORCH.open_loop(tx, name)
    assert all(leaf.dtype == jnp.float32 for leaf in params.values())
    assert error <= FLOAT32_BOUND, f"{name}: relative error {error:.3g}"


@pytest.mark.parametrize("name, change, build", CONVENTION_OFF,
                         ids=[f"{name}-{change}" for name, change, _ in CONVENTION_OFF])
def test_turning_a_torch_convention_off_fails_the_comparison(name, change, build):
    error = TORCH.closed_loop_error(build(CONFIGS[name]["hyperparams"]), name)
    assert error > 100 * FLOAT64_BOUND, f"{name} with {change}: relative error {error:.3g}"


# The worked example of REFERENCES.md: θ_0 = 0, gradients 10, .1, .1, .1, lr 1, ε 0, β defaults.
AMSGRAD_GRADS = np.array([10.0, 0.1, 0.1, 0.1])


def amsgrad_theta2(max_on_raw):
    """θ_2 in closed form. Step 1 moves by exactly -1 (m̂_1 = 10, v̂_1 = 100); at step 2,
    m̂_2 = .91/.19 and v_2 = .09991 < v_1 = .1, so the maximum keeps step 1's value: torch's raw
    v_1 = .1, divided by the current ``1 - β2²``, or Optax's v̂_1 = 100."""
    b2 = 0.999
    v1, v2 = (1 - b2) * 10.0**2, b2 * (1 - b2) * 10.0**2 + (1 - b2) * 0.1**2
    denominator = (np.sqrt(max(v1, v2) / (1 - b2**2)) if max_on_raw
                   else np.sqrt(max(v1 / (1 - b2), v2 / (1 - b2**2))))
    return -1.0 - (0.91 / 0.19) / denominator


def scalar_trajectory(tx, grads):
    """θ after each update of a scalar θ_0 = 0 fed ``grads`` (Optax's or gradchain's ``tx``)."""
    theta = jnp.zeros((), jnp.float64)

    def step(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p)
        p = gc.apply_updates(p, u)
        return (p, s), p

    run = jax.jit(lambda gs: jax.lax.scan(step, (theta, tx.init(theta)), gs)[1])
    return np.asarray(run(jnp.asarray(grads)))


@pytest.mark.parametrize("max_on_raw, rounded", [(True, -1.677), (False, -1.479)],
                         ids=["torch", "optax"])
def test_amsgrad_worked_example(max_on_raw, rounded):
    thetas = scalar_trajectory(gc.amsgrad(1.0, eps=0.0, max_on_raw=max_on_raw), AMSGRAD_GRADS)
    expected = amsgrad_theta2(max_on_raw)
    assert round(expected, 3) == rounded
    np.testing.assert_allclose(thetas[:2], [-1.0, expected], rtol=1e-14)
    if not max_on_raw:
        reference = scalar_trajectory(optax.amsgrad(1.0, eps=0.0), AMSGRAD_GRADS)
        np.testing.assert_allclose(thetas, reference, rtol=1e-14)
