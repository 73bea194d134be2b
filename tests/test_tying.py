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
import re

import chex
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


def _others(value: float) -> tuple:
    """Different values of the same kind, the valid one first where known (a decay stays
    below 1; a value of exactly 1.0 may be Shampoo's summing b2, in [0, 1], or Adafactor's
    clipping threshold, in [1, inf): both are tried)."""
    if value == 0:
        return (0.1,)
    if value < 0.5:
        return (2 * value,)
    if value < 1:
        return ((1 + value) / 2,)
    if value == 1 and isinstance(value, float):
        return (0.9, 2.0)
    return (value + 1,)


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


def _starting_value(alias, kwargs, name) -> bool:
    """Whether ``name`` is a starting value of the state, used once at ``init``: the alias then
    refuses a schedule for it, saying so."""
    try:
        getattr(gc, alias)(**{**kwargs, name: lambda count: 0.5})
    except TypeError as error:
        return "the state's starting value" in str(error)
    return False


def test_every_other_numeric_argument_is_no_hyperparameter():
    """The numeric arguments left out above are no hyperparameters, by rule: a PRNG seed
    (``key``), a starting value of the state (Adagrad's ``initial_accumulator_value``, Rprop's
    initial step size), a plain 0 that leaves its stage out (``weight_decay=0.0``: no decay
    stage is built), or a size or count declared ``int``, which shapes the compiled program
    (Adafactor's ``min_dim_size_to_factor``, Muon's ``ns_steps``, SOAP's ``max_precond_dim``)."""
    for label, alias, kwargs in ROWS:
        hyperparams, others = _arguments(alias, kwargs)
        assert hyperparams, label
        parameters = inspect.signature(getattr(gc, alias)).parameters
        for name, value in others.items():
            structural = parameters[name].annotation in (int, "int")
            assert (name == "key" or value == 0 or structural
                    or _starting_value(alias, kwargs, name)), (label, name)


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
        for new in _others(value):
            built_with = {**hyperparams, name: new, **fixed}
            try:
                built = getattr(gc, alias)(**{**kwargs, **built_with})
                break
            except ValueError:
                continue
        else:
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


# Every public primitive that stores numeric hyperparameters, built with each of them given:
# ``(constructor, arguments, hyperparameters)``.
PRIMITIVES = [
    (gc.ema, dict(decay=0.9, debias=True), ("decay",)),
    (gc.bias_correction, dict(decay=0.9), ("decay",)),
    (gc.scale_by_momentum, dict(momentum=0.9, dampening=0.1), ("momentum", "dampening")),
    (gc.nesterov_first_moment, dict(b1=0.9, momentum_decay=4e-3), ("b1", "momentum_decay")),
    (gc.folded_bias_correction, dict(b1=0.9, b2=0.99), ("b1", "b2")),
    (gc.scale_by_delta_rms, dict(rho=0.9, eps=1e-6), ("rho", "eps")),
    (gc.scale, dict(step_size=0.5), ("step_size",)),
    (gc.scale_by_learning_rate, dict(learning_rate=0.1), ("learning_rate",)),
    (gc.clip_lr, dict(b1=0.9, b2=0.99),
     ("final_lr", "base_learning_rate", "gamma", "eps", "b1", "b2")),
    (gc.rectified_step_size, dict(), ("b2", "threshold", "eps", "eps_root")),
    (gc.scale_by_trust_ratio, dict(), ("min_norm", "trust_coefficient", "eps")),
    (gc.add_decayed_weights, dict(weight_decay=0.1), ("weight_decay",)),
    (gc.add_gradient_noise, dict(key=0), ("eta", "gamma")),
    (gc.clip, dict(max_delta=0.5), ("max_delta",)),
    (gc.clip_by_global_norm, dict(max_norm=0.5), ("max_norm",)),
    (gc.clip_by_block_rms, dict(threshold=0.5), ("threshold",)),
    (gc.adaptive_grad_clip, dict(clipping=0.5), ("clipping", "eps")),
    (gc.divide_by_sqrt, dict(numerator=gc.identity(), denominator=gc.square(), eps=1e-3),
     ("eps", "eps_root")),
    (gc.switch_to_sgd, dict(adaptive=gc.sgd(0.1), sgd=gc.sgd(1.0)),
     ("estimate_decay", "tolerance")),
    (gc.lookahead, dict(inner=gc.sgd(0.1)), ("sync_period", "slow_step_size")),
    (gc.reduce_on_plateau, dict(),
     ("factor", "patience", "threshold", "cooldown", "min_scale", "eps")),
    (gc.elementwise, dict(rule=lambda u, step_size: u * step_size, name="kit_scale",
                          hyperparams={"step_size": 0.5}), ("step_size",)),
]


def _own_names(tx, params):
    return {path.split("/")[-1] for path in gc.get_hyperparams(tx.init(params))
            if "/" not in path or path.split("/")[0] not in ("adaptive_state", "sgd_state",
                                                              "branches", "inner_state")}


@pytest.mark.parametrize("constructor, kwargs, names", PRIMITIVES,
                         ids=[p[0].__name__ for p in PRIMITIVES])
def test_every_primitive_takes_the_naming_option(constructor, kwargs, names):
    """``hyperparam_name={argument: key}`` stores each hyperparameter under its key and changes
    no number."""
    params = {"w": jnp.asarray([0.5, -1.0, 2.0]), "b": jnp.asarray([0.3])}
    grads = {"w": jnp.asarray([0.1, 0.2, -0.3]), "b": jnp.asarray([-0.4])}
    plain = constructor(**kwargs)
    named = constructor(**kwargs, hyperparam_name={n: f"my_{n}" for n in names})
    assert _own_names(plain, params) >= set(names)
    assert _own_names(named, params) >= {f"my_{n}" for n in names}
    assert not _own_names(named, params) & set(names)
    value = jnp.asarray(1.0)  # the metric reduce_on_plateau reads; the others ignore it
    expected, _ = plain.update(grads, plain.init(params), params, value=value)
    actual, _ = named.update(grads, named.init(params), params, value=value)
    chex.assert_trees_all_equal(actual, expected)


def test_a_string_names_the_one_hyperparameter():
    state = gc.ema(0.9, hyperparam_name="b1").init({"w": jnp.zeros(2)})
    assert list(gc.get_hyperparams(state)) == ["b1"]


@pytest.mark.parametrize("build, error, message", [
    (lambda: gc.scale_by_momentum(0.9, hyperparam_name="b1"), ValueError,
     "scale_by_momentum: hyperparam_name='b1' is ambiguous: this primitive has the "
     "hyperparameters momentum, dampening; give a mapping {argument: name}"),
    (lambda: gc.ema(0.9, hyperparam_name={"beta": "b1"}), ValueError,
     "ema: hyperparam_name names 'beta', which is not a hyperparameter here; expected one of: "
     "decay"),
    (lambda: gc.folded_bias_correction(hyperparam_name={"b1": "b", "b2": "b"}), ValueError,
     "folded_bias_correction: hyperparam_name={'b1': 'b', 'b2': 'b'} gives two "
     "hyperparameters of one primitive the same name"),
    (lambda: gc.scale(0.5, hyperparam_name={"step_size": ""}), ValueError,
     "scale: hyperparam_name['step_size']='' is not a name"),
    (lambda: gc.scale(0.5, hyperparam_name=3), TypeError,
     "scale: hyperparam_name must be a string or a mapping {argument: name}, got int 3"),
])
def test_a_bad_name_is_refused(build, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        build()
