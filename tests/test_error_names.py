"""Errors name what the user wrote: the public function called, then its argument.

Driven by ``registry.ALIAS_CALLS``: for every alias and every numeric argument, a value out of
range raises ``ValueError`` starting with ``<alias>: <argument>=<value>``, whatever primitive
inside the alias holds the check. NaN is out of every range; values just outside each bound
recorded by the primitives that store the argument under the alias's name are probed too. A
primitive called directly names itself, and so do schedules and ``set_hyperparams``.
"""

import inspect
import math
import re

import jax
import jax.numpy as jnp
import pytest

import gradchain as gc
from registry import ALIAS_CALLS


# Numbers that are no hyperparameters: ``noisy_sgd``'s PRNG seed.
NOT_RANGED = {"key"}


def _numeric_arguments(function, kwargs):
    """The arguments of ``function`` that take a number: a numeric default or a numeric value
    in ``kwargs`` (``momentum=None`` is numeric when the row gives it)."""
    names = []
    for name, parameter in inspect.signature(function).parameters.items():
        value = kwargs.get(name, parameter.default)
        if (isinstance(value, (int, float)) and not isinstance(value, bool)
                and name not in NOT_RANGED):
            names.append(name)
    return names


def _ranges_by_name(tx) -> dict:
    """Every range recorded anywhere in ``tx``'s tree, by hyperparameter name."""
    found = {}
    for name, ranges in getattr(tx, "ranges", {}).items():
        found.setdefault(name, set()).update(ranges)
    for child in getattr(tx, "children", ()):
        for name, ranges in _ranges_by_name(child).items():
            found.setdefault(name, set()).update(ranges)
    return found


def _outside(allowed) -> list:
    """Values just outside ``allowed`` (a ``Range``): on an open bound, beyond a closed one."""
    probes = []
    if allowed.low is not None:
        probes.append(allowed.low if allowed.low_open else allowed.low - 0.5)
    if allowed.high is not None:
        probes.append(allowed.high if allowed.high_open else allowed.high + 0.5)
    return probes


# Checks of a value derived from an argument, which no range of the state records: AdaBound's
# base rate γ_0 (the learning rate at step 0, unless given) must be > 0, while the rate in the
# state may be 0.
UNRECORDED = {("adabound", "learning_rate"): [0.0], ("amsbound", "learning_rate"): [0.0]}


def _cases():
    cases = []
    for label, alias, kwargs in ALIAS_CALLS:
        function = getattr(gc, alias)
        bounds = _ranges_by_name(function(**kwargs))
        for argument in _numeric_arguments(function, kwargs):
            probes = [math.nan] + [v for r in sorted(bounds.get(argument, ()))
                                   for v in _outside(r)]
            if "base_learning_rate" not in kwargs:
                probes += UNRECORDED.get((alias, argument), [])
            for value in dict.fromkeys(probes):
                cases.append(pytest.param(alias, kwargs, argument, value,
                                          id=f"{label}-{argument}={value}"))
    return cases


CASES = _cases()


def test_every_alias_has_probes():
    """Every named optimizer (``gradchain/optimizers/``, and ``lookahead``) has a row."""
    named = {name for name in gc.__all__
             if getattr(getattr(gc, name), "__module__", "").startswith("gradchain.optimizers.")}
    assert {alias for _, alias, _ in ALIAS_CALLS} == named | {"lookahead"}
    assert {c.values[0] for c in CASES} == named | {"lookahead"}
    assert len(CASES) > 150


@pytest.mark.parametrize("alias, kwargs, argument, value", CASES)
def test_out_of_range_names_the_alias_and_its_argument(alias, kwargs, argument, value):
    with pytest.raises(ValueError) as error:
        getattr(gc, alias)(**{**kwargs, argument: value})
    assert str(error.value).startswith(f"{alias}: {argument}={value!r}"), str(error.value)


@pytest.mark.parametrize("build, message", [
    (lambda: gc.ema(2.0), "ema: decay=2.0 is out of range"),
    (lambda: gc.bias_correction(1.0), "bias_correction: decay=1.0 is out of range"),
    (lambda: gc.scale_by_adam(b1=1.0), "scale_by_adam: b1=1.0 is out of range"),
    (lambda: gc.clip_lr(base_learning_rate=0.0), "clip_lr: base_learning_rate=0.0 is out"),
    (lambda: gc.chain(gc.identity(), 0.1), "chain: transformations[1] is 0.1"),
    (lambda: gc.lookahead(gc.sgd(0.1), slow_step_size=2.0),
     "lookahead: slow_step_size=2.0 is out of range"),
    # the inner optimizer is built (and refused) before partition is called
    (lambda: gc.partition({"a": gc.sgd(-0.1)}, "a"), "sgd: learning_rate=-0.1 is out of range"),
    (lambda: gc.schedules.cyclic_lr(0.1, 1.0, step_size_up=0), "cyclic_lr: step_size_up=0"),
    (lambda: gc.schedules.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, exponent=-1.0),
     "warmup_cosine_decay_schedule: exponent=-1.0 is out of range"),
])
def test_a_function_called_directly_names_itself(build, message):
    with pytest.raises((ValueError, TypeError), match=f"^{re.escape(message)}"):
        build()


def test_contradictory_options_name_the_alias():
    with pytest.raises(ValueError, match="^sgd: nesterov=True needs dampening=0"):
        gc.sgd(0.1, momentum=0.9, nesterov=True, dampening=0.1)
    with pytest.raises(ValueError, match="^noisy_sgd: form='bad' is not one of"):
        gc.noisy_sgd(0.1, key=0, form="bad")
    with pytest.raises(ValueError, match="^MultiSteps: every_k_schedule=0 is out of range"):
        gc.MultiSteps(gc.sgd(0.1), 0)


def test_the_name_is_forgotten_after_an_error():
    """A refusal inside one alias does not leave its name behind for the next call."""
    with pytest.raises(ValueError, match="^adam: "):
        gc.adam(1e-3, b1=1.0)
    with pytest.raises(ValueError, match="^ema: "):
        gc.ema(2.0)


def test_traced_values_pass_unchecked_under_jit_and_vmap():
    def step(lr, b1):
        tx = gc.adam(lr, b1=b1)
        params = {"w": jnp.ones(2)}
        updates, _ = tx.update(params, tx.init(params), params)
        return updates["w"]

    out = jax.jit(jax.vmap(step))(jnp.asarray([1e-3, -1.0]), jnp.asarray([0.9, 2.0]))
    assert out.shape == (2, 2)


_PARAMS = {"a": jnp.ones(3), "b": jnp.ones(2)}
_UPDATE_ALIASES = sorted({alias for _, alias, _ in ALIAS_CALLS})


@pytest.mark.parametrize("alias", _UPDATE_ALIASES)
def test_update_refusals_start_with_the_alias_called(alias):
    """A refusal raised while updating (a leaf missing from the updates, a state from elsewhere)
    starts with the alias the user called, then names the piece that found it."""
    kwargs = next(kw for _, a, kw in ALIAS_CALLS if a == alias)
    tx = getattr(gc, alias)(**kwargs)
    state = tx.init(_PARAMS)
    with pytest.raises(TypeError, match=f"^{alias}: update was given None as its state"):
        tx.update(_PARAMS, None, _PARAMS)
    if any(jnp.shape(x) for x in jax.tree.leaves(state)):  # it keeps per-leaf statistics
        with pytest.raises(ValueError, match=f"^{alias}: .*the updates do not match"):
            tx.update({"a": jnp.ones(3)}, state, _PARAMS)


def test_update_refusals_inside_a_user_chain_name_the_chain():
    tx = gc.chain(gc.clip_by_global_norm(1.0), gc.adam(1e-3))
    state = tx.init(_PARAMS)
    with pytest.raises(ValueError, match=r"^chain: ema: .*: b is in the optimizer state"):
        tx.update({"a": jnp.ones(3)}, state, _PARAMS)
