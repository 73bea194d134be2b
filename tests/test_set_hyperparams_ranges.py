"""``set_hyperparams`` refuses what the constructor refuses, with the constructor's range.

Driven by ``registry.ALIAS_CALLS``: for every alias and every hyperparameter its state keeps
under the name of one of the alias's arguments, each probe value that the alias refuses as out
of range at construction is refused by ``set_hyperparams`` with a ``ValueError`` starting with
``set_hyperparams:``, naming the address and value and giving the same allowed range; a value
the alias accepts is accepted. Every hyperparameter kept in the state, whatever its name,
refuses NaN. Traced values pass unchecked (under ``jit`` there is nothing to compare).
"""

import inspect
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc
from registry import ALIAS_CALLS

PARAMS = {"w": jnp.ones(2), "b": jnp.zeros(())}
PROBES = [math.nan, -0.5, 0.0, 0.5, 1.0, 1.5, 4.0]
INTERVAL = re.compile(r" is out of range; expected \S+ in (\S+, \S+)$")


def _address(state, path: str) -> str:
    """The bare name when it selects one value (a tied hyperparameter is set as one), else the
    full path."""
    name = path.split("/")[-1]
    try:
        gc.get_hyperparam(state, name)
        return name
    except ValueError:
        return path


# Arguments that stand for more than the stored hyperparameter at construction: adabound's
# ``learning_rate`` is also γ_0 (``clip_lr``'s ``base_learning_rate``, > 0) unless that is
# given; γ_0 is stored apart, so 0 is a learning rate that can be set later (the rows that give
# ``base_learning_rate`` compare ``learning_rate`` with the constructor).
WIDER_THAN_ARGUMENT = {"adabound": "learning_rate", "amsbound": "learning_rate"}


def _cases():
    cases = []
    for label, alias, kwargs in ALIAS_CALLS:
        tx = getattr(gc, alias)(**kwargs)
        state = tx.init(PARAMS)
        arguments = set(inspect.signature(getattr(gc, alias)).parameters)
        if "base_learning_rate" not in kwargs:
            arguments.discard(WIDER_THAN_ARGUMENT.get(alias))
        addresses = dict.fromkeys(_address(state, p) for p in gc.get_hyperparams(state))
        for address in addresses:
            cases.append(pytest.param(alias, kwargs, address,
                                      address.split("/")[-1] in arguments,
                                      id=f"{label}-{address}"))
    return cases


CASES = _cases()


def _refusal(build):
    """The interval of an out-of-range refusal, ``"other"`` for another refusal, or None."""
    try:
        build()
    except ValueError as error:
        found = INTERVAL.search(str(error))
        return found.group(1) if found else "other"
    return None


@pytest.mark.parametrize("alias, kwargs, address, is_argument", CASES)
def test_set_hyperparams_refuses_what_the_constructor_refuses(alias, kwargs, address,
                                                              is_argument):
    """Each probe is refused by both or by neither; ``set_hyperparams`` gives the range of all
    the places the value goes (Adam's ``b1`` in its EMA, [0, 1], and its bias correction,
    [0, 1)), which is one the constructor reports (it names the first check that fails)."""
    tx = getattr(gc, alias)(**kwargs)
    state = tx.init(PARAMS)
    name = address.split("/")[-1]
    set_ranges, built_ranges = set(), set()
    for value in PROBES:
        setting = _refusal(lambda: gc.set_hyperparams(tx, state, {address: value}))
        if setting is not None:
            with pytest.raises(ValueError, match="^" + re.escape(
                    f"set_hyperparams: {address}={value!r} is out of range; expected "
                    f"{address} in {setting}") + "$"):
                gc.set_hyperparams(tx, state, {address: value})
            set_ranges.add(setting)
        if not is_argument:
            assert setting is not None or not math.isnan(value)
            continue
        building = _refusal(lambda: getattr(gc, alias)(**{**kwargs, name: value}))
        if building == "other":
            continue
        assert (setting is None) == (building is None), (value, setting, building)
        built_ranges.add(building)
    assert len(set_ranges) <= 1
    assert set_ranges <= built_ranges or not is_argument, (set_ranges, built_ranges)


def test_every_alias_is_probed():
    assert {c.values[0] for c in CASES} == {alias for _, alias, _ in ALIAS_CALLS}
    assert sum(c.values[3] for c in CASES) > 80


def test_a_schedule_of_the_same_range_is_no_excuse():
    """A value refused for a constant hyperparameter is refused by its address alone; the
    refusal of a scheduled target comes first (it cannot be set at all)."""
    tx = gc.adam(gc.schedules.constant_schedule(1e-3))
    with pytest.raises(ValueError, match="follows a schedule"):
        gc.set_hyperparams(tx, tx.init(PARAMS), learning_rate=-1.0)


def test_arrays_are_checked_elementwise():
    tx = gc.sgd(0.1, momentum=0.9)
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=r"^set_hyperparams: momentum=.* expected momentum in "
                                         r"\[0, 1\]$"):
        gc.set_hyperparams(tx, state, momentum=np.float32(1.5))
    gc.set_hyperparams(tx, state, momentum=np.float32(1.0))


def test_traced_values_pass_unchecked():
    tx = gc.adam(1e-3)
    state = tx.init(PARAMS)

    @jax.jit
    def lr_after_setting(lr):
        return gc.get_hyperparam(gc.set_hyperparams(tx, state, learning_rate=lr),
                                 "learning_rate")

    assert float(lr_after_setting(-1.0)) == -1.0


def test_a_threshold_the_constructor_takes_as_inf_can_be_set_to_inf():
    """``allow_inf`` is part of the recorded range: ``clip_by_global_norm(inf)`` is "no
    clipping" at construction, so ``set_hyperparams`` accepts it too, and still refuses 0."""
    tx = gc.clip_by_global_norm(1.0)
    state = tx.init({"w": jnp.ones(2)})
    state = gc.set_hyperparams(tx, state, max_norm=float("inf"))
    assert gc.get_hyperparam(state, "max_norm") == float("inf")
    with pytest.raises(ValueError, match=r"^set_hyperparams: max_norm=0.0 .*\(0, inf\]"):
        gc.set_hyperparams(tx, state, max_norm=0.0)


def test_adabound_checks_its_base_rate_without_restricting_the_rate_in_the_state():
    """``adabound(0.0)`` is refused (γ_0 = 0 would make the bounds 0), but γ_0 is kept apart
    from the learning rate in the state, which may be set to 0 like every other rate."""
    with pytest.raises(ValueError, match=r"^adabound: learning_rate=0.0 is out of range"):
        gc.adabound(0.0)
    tx = gc.adabound(1e-3)
    state = gc.set_hyperparams(tx, tx.init({"w": jnp.ones(2)}), learning_rate=0.0)
    assert gc.get_hyperparam(state, "learning_rate") == 0.0


def test_each_group_checks_the_ranges_of_its_own_transformation():
    """Two parameter groups hold a hyperparameter of the same name with different ranges: each
    value is checked against its own group's (found through ``tx.parts``, not through names in
    the description)."""
    groups = {"signed": gc.scale(2.0, hyperparam_name="learning_rate"),
              "rate": gc.scale_by_learning_rate(0.1)}
    tx = gc.param_groups(groups, lambda path, leaf: "signed" if path == ("w",) else "rate")
    state = tx.init(PARAMS)
    new = gc.set_hyperparams(tx, state, {"inner_states/signed/learning_rate": -1.0})
    assert float(gc.get_hyperparam(new, "inner_states/signed/learning_rate")) == -1.0
    with pytest.raises(ValueError, match=r"^set_hyperparams: inner_states/rate/learning_rate="
                                         r"-1.0 is out of range; .* in \[0, inf\)$"):
        gc.set_hyperparams(tx, state, {"inner_states/rate/learning_rate": -1.0})
