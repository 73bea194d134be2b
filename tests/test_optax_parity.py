"""Every registry row with an Optax counterpart gives Optax's numbers.

- complex rows (``registry.complex_params``) run the same two tests in complex128 and complex64;
- float64, closed loop, ``STEPS`` steps: relative error <= 1e-10 (measured: most rows are
  bit-identical, the largest error is 4e-13 when the two runs are compiled separately);
- float32, open loop on Optax's recorded float32 gradients: relative error <= 1e-5 (measured:
  <= 6e-7; a float32 closed loop would measure the problem's sensitivity, not the optimizer);
- drop-in: the rows built with ``defaults=True`` call each alias with only a learning rate, so
  the two tests above check that ``gc.<alias>(lr)`` equals ``optax.<alias>(lr)``; the signature
  test checks that every argument both aliases take has the same default and position.
"""

import functools
import inspect

import jax
import optax
import pytest

import gradchain as gc
from problems import max_relative_error, trajectory
from registry import CONFIGS, STEPS, WITH_OPTAX, ids

CLASSIC_ALIASES = ("sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "amsgrad")


# Documented departures from Optax's defaults (see the alias's docstring).
DIFFERENT_DEFAULTS = {
    # Optax's None skips the step size and so ascends; gradchain uses torch's descent step 1.0.
    ("adadelta", "learning_rate"),
}


@functools.lru_cache(maxsize=None)
def runs(config):
    """Optax's and gradchain's trajectories, float64 closed loop and float32 open loop.

    The four runs are compiled as one program (compilation is most of this test's time);
    cached so the float64 and float32 tests of a row share it.
    """
    def run():
        ref64, _ = trajectory(config.reference(), config.dtype("float64"), STEPS)
        ours64, _ = trajectory(config.gradchain(), config.dtype("float64"), STEPS)
        ref32, grads32 = trajectory(config.reference(), config.dtype("float32"), STEPS)
        ours32, _ = trajectory(config.gradchain(), config.dtype("float32"), STEPS, grads=grads32)
        return {"float64": (ours64, ref64), "float32": (ours32, ref32)}

    return jax.jit(run)()


TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", WITH_OPTAX, ids=ids(WITH_OPTAX))
def test_trajectory_matches_optax(config, dtype):
    actual, expected = runs(config)[dtype]
    for leaf in actual.values():
        assert leaf.dtype == config.dtype(dtype)
    assert max_relative_error(actual, expected) <= TOLERANCE[dtype]


def test_registry_names_are_unique():
    assert len(set(ids(CONFIGS))) == len(CONFIGS)


def test_every_classic_alias_has_a_drop_in_row():
    drop_in = {c.name.split("(")[0] for c in WITH_OPTAX if c.defaults}
    assert drop_in >= set(CLASSIC_ALIASES)


def _positional_index(parameters, name):
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [n for n, p in parameters.items() if p.kind in kinds]
    return positional.index(name) if name in positional else None


@pytest.mark.parametrize("name", CLASSIC_ALIASES)
def test_alias_signature_is_a_drop_in_for_optax(name):
    ours = inspect.signature(getattr(gc, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    missing = {arg for arg in theirs if arg not in ours}
    assert not missing, f"{name} lacks Optax's {missing}"
    for arg, parameter in theirs.items():
        assert _positional_index(ours, arg) == _positional_index(theirs, arg), (name, arg)
        if (name, arg) not in DIFFERENT_DEFAULTS:
            assert ours[arg].default == parameter.default, (name, arg)
