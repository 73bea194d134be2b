"""Setting a hyperparameter at step 0 is building the optimizer with it.

Driven by ``registry.ALIAS_CALLS`` (every named optimizer, each optional stage switched on): for
every numeric argument that the alias's state keeps under the argument's name, the run of
``set_hyperparams(tx, tx.init(p), name=v)`` equals the run of the alias built with ``name=v``,
in float64, step for step. So every place the argument reaches (Adam's ``b1`` in its moment and
its correction, SWATS' ``b1`` in its SGD phase's momentum and ``1 - b1``, its ``b2`` in the
switch's estimate) stores it under that one name, and nothing derived from it is frozen at
construction.

The runs are long enough for every phase: SWATS switches to SGD after step 2 (a huge
tolerance), AdaBound's bounds close within a few steps (``gamma=0.5``) and bind, RAdam
rectifies from step 6 on, Lookahead syncs (period 5 or 6). Each row compiles one function,
the alias built from traced values; both runs reuse it.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc
from problems import gradient, initial_params
from registry import ALIAS_CALLS

STEPS = 12
# Arguments that bring a row's later phases into the few steps run here.
PHASES = {"swats": {"tolerance": 1e9}, "adabound": {"gamma": 0.5}, "amsbound": {"gamma": 0.5}}
# Arguments of an alias that are fixed when it is built, whatever a hyperparameter is set to
# later: AdaBound's γ_0 is the learning rate it was built with (the authors' ``base_lr``) unless
# given, so a learning rate set at run time moves its bounds, as a schedule does.
BUILT_FROM = {("adabound", "learning_rate"): "base_learning_rate",
              ("amsbound", "learning_rate"): "base_learning_rate"}
# Arguments that another option pins: torch refuses a dampening with Nesterov momentum.
PINNED = {("sgd", "dampening")}


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _other(value: float) -> float:
    """A different valid value: the same kind of number (a decay stays below 1)."""
    if value == 0:
        return 0.1
    if value < 0.5:
        return 2 * value
    if value < 1:
        return (1 + value) / 2
    return value + 1


def _stored_names(state) -> set:
    return {path.split("/")[-1] for path in gc.get_hyperparams(state)}


def _arguments(alias, kwargs):
    """``(hyperparameters, others)``: the numeric arguments the state keeps under their own
    name, and the other numeric arguments."""
    function = getattr(gc, alias)
    stored = _stored_names(function(**kwargs).init(initial_params(jnp.float64)))
    values = {name: kwargs.get(name, parameter.default)
              for name, parameter in inspect.signature(function).parameters.items()}
    numeric = {name: value for name, value in values.items() if _numeric(value)}
    return ({n: v for n, v in numeric.items() if n in stored},
            {n: v for n, v in numeric.items() if n not in stored})


ROWS = [(label, alias, {**kwargs, **PHASES.get(alias, {})})
        for label, alias, kwargs in ALIAS_CALLS]


def test_every_other_numeric_argument_is_no_hyperparameter():
    """The numeric arguments left out above are no hyperparameters, by rule: a PRNG seed
    (``key``), a statistic's starting value (``initial_*``, used once at ``init``), or a
    plain 0 that leaves its stage out (``weight_decay=0.0``: no decay stage is built)."""
    for label, alias, kwargs in ROWS:
        hyperparams, others = _arguments(alias, kwargs)
        assert hyperparams, label
        for name, value in others.items():
            assert name == "key" or name.startswith("initial_") or value == 0, (label, name)


def _runner(alias, kwargs):
    """One compiled run of ``alias`` built from ``kwargs`` and ``values`` (arrays, traced):
    ``run(values, state) -> (params after each step, final state)``."""

    @jax.jit
    def run(values, state):
        tx = getattr(gc, alias)(**{**kwargs, **values})

        def step(carry, _):
            params, s = carry
            updates, s = tx.update(gradient(params), s, params)
            params = gc.apply_updates(params, updates)
            return (params, s), params

        (_, state), params = jax.lax.scan(step, (initial_params(jnp.float64), state), None,
                                          length=STEPS)
        return params, state

    return run


@pytest.mark.parametrize("label, alias, kwargs", ROWS, ids=[r[0] for r in ROWS])
def test_setting_at_step_zero_is_building_with_it(label, alias, kwargs):
    hyperparams, _ = _arguments(alias, kwargs)
    fixed = {BUILT_FROM[alias, name]: value for name, value in hyperparams.items()
             if (alias, name) in BUILT_FROM and BUILT_FROM[alias, name] not in kwargs}
    run = _runner(alias, kwargs)
    params = initial_params(jnp.float64)
    default = getattr(gc, alias)(**kwargs)
    for name, value in hyperparams.items():
        new = _other(value)
        built_with = {**hyperparams, name: new, **fixed}
        try:
            built = getattr(gc, alias)(**{**kwargs, **built_with})
        except ValueError:
            assert (alias, name) in PINNED, (label, name)
            continue
        state = gc.set_hyperparams(default, default.init(params), {name: new})
        set_run, set_state = run(_arrays({**hyperparams, **fixed}), state)
        built_run, built_state = run(_arrays(built_with), built.init(params))
        if alias == "swats":
            for s in (set_state, built_state):
                assert bool(gc.find_state(s, "switched")), name
        for leaf in set_run:
            np.testing.assert_allclose(set_run[leaf], built_run[leaf], rtol=1e-13, atol=1e-15,
                                       err_msg=f"{label}: {name}={new}")


def _arrays(values):
    return {k: jnp.asarray(float(v)) for k, v in values.items()}
