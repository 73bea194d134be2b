"""RAdam and NAdam against ``torch.optim``, AdaBound/AMSBound against the authors' algorithm.

``tests/golden/make_torch_golden_extra.py`` records 200 closed-loop steps of each configuration
on the shared problem (float64 params; float32 params and gradients), with the full
hyperparameters. Each is rebuilt here from those numbers with the gradchain call that
``EQUIVALENTS`` names, and:

- float64, closed loop: params within 1e-10 relative error;
- float32, open loop on torch's recorded gradients: params within 1e-5.

``CONVENTION_OFF`` shows each convention option matters: turned off, the comparison fails.
"""

import jax.numpy as jnp
import pytest

import gradchain as gc
from golden_files import FLOAT32_BOUND, FLOAT64_BOUND, GoldenTrajectories

REFERENCE = GoldenTrajectories("torch_extra")
CONFIGS = REFERENCE.configs


def torch_radam(config, **overrides):
    hp = config["hyperparams"]
    kwargs = dict(raw_v=True, weight_decay=hp["weight_decay"],
                  decoupled_weight_decay=hp["decoupled_weight_decay"])
    return gc.radam(hp["lr"], *hp["betas"], hp["eps"], **{**kwargs, **overrides})


def torch_nadam(config, **overrides):
    hp = config["hyperparams"]
    kwargs = dict(momentum_decay=hp["momentum_decay"], weight_decay=hp["weight_decay"],
                  decoupled_weight_decay=hp["decoupled_weight_decay"])
    return gc.nadam(hp["lr"], *hp["betas"], hp["eps"], **{**kwargs, **overrides})


def learning_rate(config):
    """The lr, or torch's StepLR as a schedule of gradchain's count (0 at the first update)."""
    lr, step_lr = config["hyperparams"]["lr"], config["step_lr"]
    if step_lr is None:
        return lr
    return lambda count: lr * step_lr["gamma"] ** (count // step_lr["step_size"])


def authors_adabound(config, **overrides):
    hp = config["hyperparams"]
    kwargs = dict(amsbound=hp["amsbound"], base_learning_rate=hp["lr"])
    return gc.adabound(learning_rate(config), *hp["betas"], hp["final_lr"], hp["gamma"],
                       hp["eps"], hp["weight_decay"], **{**kwargs, **overrides})


def paper_bias_corrections(config):
    """AdaBound with bias-corrected moments outside the clip (the paper's Algorithm 2 form)."""
    hp = config["hyperparams"]
    b1, b2 = hp["betas"]
    return gc.chain(
        gc.per_parameter_step(gc.first_moment(b1),
                              gc.chain(gc.second_moment(b2),
                                       gc.clip_lr(hp["final_lr"], hp["lr"], hp["gamma"],
                                                  hp["eps"]))),
        gc.scale_by_learning_rate(hp["lr"]))


EQUIVALENTS = {
    "radam": torch_radam,
    "radam_weight_decay": torch_radam,
    "radam_decoupled_weight_decay": torch_radam,
    "nadam": torch_nadam,
    "nadam_weight_decay": torch_nadam,
    "nadam_decoupled_weight_decay": torch_nadam,
    "adabound": authors_adabound,
    "adabound_clipped": authors_adabound,
    "adabound_weight_decay": authors_adabound,
    "amsbound_clipped": authors_adabound,
    "adabound_step_lr": authors_adabound,
}

CONVENTION_OFF = [
    ("radam", "ε on the raw root", lambda c: torch_radam(c, raw_v=False)),
    ("radam_decoupled_weight_decay", "decoupled decay (L2 instead)",
     lambda c: torch_radam(c, decoupled_weight_decay=False)),
    ("nadam", "momentum_decay (Optax's constant β1 instead)",
     lambda c: torch_nadam(c, momentum_decay=None)),
    ("nadam_decoupled_weight_decay", "decoupled decay (L2 instead)",
     lambda c: torch_nadam(c, decoupled_weight_decay=False)),
    ("adabound_clipped", "bias corrections inside the clip", paper_bias_corrections),
    ("amsbound_clipped", "the maximum of v", lambda c: authors_adabound(c, amsbound=False)),
    # base_learning_rate following the schedule keeps the bounds' limit at final_lr itself.
    ("adabound_step_lr", "bounds following the learning rate",
     lambda c: authors_adabound(c, base_learning_rate=learning_rate(c))),
]


def test_every_golden_configuration_has_an_equivalent():
    assert set(EQUIVALENTS) == set(CONFIGS)
    assert {name for name, _, _ in CONVENTION_OFF} <= set(CONFIGS)


@pytest.mark.parametrize("name", sorted(EQUIVALENTS))
def test_float64_closed_loop_matches_reference(name):
    error = REFERENCE.closed_loop_error(EQUIVALENTS[name](CONFIGS[name]), name)
    assert error <= FLOAT64_BOUND, f"{name}: relative error {error:.3g}"


@pytest.mark.parametrize("name", sorted(EQUIVALENTS))
def test_float32_open_loop_matches_reference(name):
    params, error = REFERENCE.open_loop(EQUIVALENTS[name](CONFIGS[name]), name)
    assert all(leaf.dtype == jnp.float32 for leaf in params.values())
    assert error <= FLOAT32_BOUND, f"{name}: relative error {error:.3g}"


@pytest.mark.parametrize("name, what, build", CONVENTION_OFF,
                         ids=[f"{name}-{what}" for name, what, _ in CONVENTION_OFF])
def test_turning_a_convention_off_fails_the_comparison(name, what, build):
    error = REFERENCE.closed_loop_error(build(CONFIGS[name]), name)
    assert error > 100 * FLOAT64_BOUND, f"{name} without {what}: relative error {error:.3g}"
