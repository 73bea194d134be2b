"""Reading and changing hyperparameters of a built optimizer at run time.

- ``get_hyperparams`` lists every hyperparameter by path; scheduled ones show the value in force.
- ``set_hyperparams`` addresses by name, by path prefix or by full path; tied hyperparameters
  (Adam's ``b1`` in its EMA and its bias correction) move together; unknown, ambiguous and
  scheduled targets raise clear errors.
- Changing values between steps from outside ``jit`` never recompiles (compilations counted),
  and the new values take effect: the trajectory equals Optax's ``inject_hyperparams`` given the
  same changes at the same steps.
- It reaches primitives inside nested chains, branches and wrappers (parameter groups, masks,
  non-finite skipping, gradient accumulation), works inside ``jit`` and on ``pmap``-replicated
  states.
"""

import re
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
from gradchain import schedules as S
from registry import CONSTANT, ids, make_schedule

PARAMS = {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}


def loss(params):
    return jnp.sum((params["kernel"] - 0.3) ** 4) + jnp.sum(jnp.cosh(params["bias"] - 1.0))


def by_rank(path, leaf):
    return "matrices" if leaf.ndim > 1 else "vectors"


def test_get_lists_every_hyperparameter_by_path():
    state = gc.adam(1e-3).init(PARAMS)
    got = {k: float(v) for k, v in gc.get_hyperparams(state).items()}
    assert got == {"1/branches/0/b1": 0.9, "1/branches/1/1/b2": 0.999, "1/eps": 1e-8,
                   "1/eps_root": 0.0, "2/learning_rate": 1e-3}
    assert float(gc.get_hyperparam(state, "learning_rate")) == 1e-3
    assert float(gc.get_hyperparam(state, "b1")) == 0.9


def test_set_by_name_by_prefix_and_by_path():
    tx = gc.adam(1e-3)
    state = tx.init(PARAMS)
    new = gc.set_hyperparams(tx, state, learning_rate=1e-4, b1=0.95)
    got = gc.get_hyperparams(new)
    assert float(got["2/learning_rate"]) == 1e-4
    assert float(got["1/branches/0/b1"]) == 0.95
    new = gc.set_hyperparams(tx, state, {"1/b2": 0.99, "1/eps": 1e-6})
    got = gc.get_hyperparams(new)
    assert (float(got["1/branches/1/1/b2"]), float(got["1/eps"])) == (0.99, 1e-6)
    # the other entries are the very same arrays
    assert got["1/eps_root"] is gc.get_hyperparams(state)["1/eps_root"]
    chex.assert_trees_all_equal_structs(new, state)


def test_tied_values_move_together_and_diverged_ones_are_ambiguous():
    """torch's AMSGrad keeps ``b2`` in its EMA and in the bias correction after ``max_v``: one
    name, one tied hyperparameter, unless a full path sets one of them alone."""
    tx = gc.amsgrad(1e-3, max_on_raw=True)
    state = tx.init(PARAMS)
    tied = gc.get_hyperparams(gc.set_hyperparams(tx, state, b2=0.99))
    assert float(tied["1/branches/1/1/b2"]) == float(tied["1/branches/1/3/b2"]) == 0.99
    state = gc.set_hyperparams(tx, state, {"1/branches/1/1/b2": 0.5})
    message = ("'b2' is ambiguous: it matches 2 hyperparameters holding different values "
               "(1/branches/1/1/b2=0.5, 1/branches/1/3/b2=0.999); give a path prefix that "
               "selects one, e.g. '1/branches/1/1/b2'")
    with pytest.raises(ValueError, match=re.escape("set_hyperparams: " + message)):
        gc.set_hyperparams(tx, state, b2=0.8)
    with pytest.raises(ValueError, match=re.escape("get_hyperparam: " + message)):
        gc.get_hyperparam(state, "b2")


def test_unknown_address_lists_the_paths_there_are():
    tx = gc.sgd(0.1, momentum=0.9)
    state = tx.init(PARAMS)
    with pytest.raises(KeyError, match=re.escape(
            "set_hyperparams: no hyperparameter matches 'lr'; the state has: '1/dampening', "
            "'1/momentum', '2/learning_rate'")):
        gc.set_hyperparams(tx, state, lr=0.01)
    with pytest.raises(KeyError, match="no hyperparameter matches '2/momentum'"):
        gc.set_hyperparams(tx, state, {"2/momentum": 0.5})
    with pytest.raises(ValueError, match="an address is a non-empty string"):
        gc.set_hyperparams(tx, state, {"": 0.5})


def test_scheduled_targets_raise_and_constants_beside_them_can_be_set():
    tx = gc.adam(S.cosine_annealing_lr(1e-3, 100), b1=S.one_cycle_momentum(100))
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=re.escape(
            "set_hyperparams: '2/learning_rate' follows a schedule, which sets it at every "
            "update; a value set from outside would be overwritten")):
        gc.set_hyperparams(tx, state, learning_rate=1e-4)
    with pytest.raises(ValueError, match=r"^set_hyperparams: '1/branches/0/b1' follows a "
                                         r"schedule, which sets it"):
        gc.set_hyperparams(tx, state, b1=0.9)
    assert float(gc.get_hyperparams(gc.set_hyperparams(tx, state, b2=0.99))
                 ["1/branches/1/1/b2"]) == 0.99


class _Wrapped(NamedTuple):
    inner: Any


def forgetful_wrapper(inner):
    """A wrapper written by hand that describes nothing (no name, hyperparams or children)."""
    return gc.GradientTransformation(
        lambda params: _Wrapped(inner.init(params)),
        lambda updates, state, params=None: (
            lambda out: (out[0], _Wrapped(out[1])))(inner.update(updates, state.inner, params)))


@pytest.mark.parametrize("wrap", [
    lambda tx: gc.GradientTransformation(tx.init, tx.update),
    forgetful_wrapper,
    lambda tx: gc.chain(forgetful_wrapper(gc.chain(tx)), gc.identity()),
], ids=["rebuilt-from-init-and-update", "forgetful-wrapper", "inside-chains"])
def test_a_schedule_is_refused_whatever_describes_the_transformation(wrap):
    """Which hyperparameters are scheduled is told by the state: a transformation that carries
    no description of how it was built still refuses to set them (they would be overwritten at
    the next step), and still sets the constants beside them."""
    tx = wrap(gc.scale_by_learning_rate(S.step_lr(0.1, 10)))
    assert "learning_rate" not in gc.describe(tx)  # nothing describes the rate
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=r"^set_hyperparams: '(\S*/)?learning_rate' follows a "
                                         r"schedule, which sets it at every update"):
        gc.set_hyperparams(tx, state, learning_rate=0.5)
    new = gc.set_hyperparams(tx, state, learning_rate_scale=0.5)
    updates, _ = tx.update(PARAMS, new)
    np.testing.assert_allclose(updates["kernel"], -0.05 * np.ones((3, 2)))
    ema = wrap(gc.ema(S.constant_schedule(0.9)))  # every hyperparameter of it scheduled
    with pytest.raises(ValueError, match=r"'(\S*/)?decay' follows a schedule"):
        gc.set_hyperparams(ema, ema.init(PARAMS), decay=0.5)


def test_a_state_made_by_hand_keeps_what_is_set():
    """A state without constructor records (made by hand) tells of no schedule: its values
    are the ones in force (``core/hyperparams.py``), and can be set."""
    tx = gc.sgd(0.1)
    state = tx.init(PARAMS)
    made = state[:-1] + (state[-1]._replace(hyperparams={"learning_rate": jnp.asarray(0.1)}),)
    new = gc.set_hyperparams(tx, made, learning_rate=0.25)
    np.testing.assert_allclose(tx.update(PARAMS, new)[0]["kernel"], -0.25 * np.ones((3, 2)))


def _rate_starts_the_state(config) -> bool:
    """Whether the row's learning rate is a starting value of the state (Rprop's initial step
    size), which its constructor refuses as a schedule, saying so; any other error propagates."""
    try:
        config.make(make_schedule(config.learning_rate))
    except TypeError as error:
        if "the state's starting value" in str(error):
            return True
        raise
    return False


STARTING_RATE = [c for c in CONSTANT if _rate_starts_the_state(c)]
SCHEDULED_RATE = [c for c in CONSTANT if c.name not in {s.name for s in STARTING_RATE}]


def test_only_rprop_takes_its_rate_as_a_starting_value():
    assert {c.name.split("(")[0] for c in STARTING_RATE} == {"rprop"}


@pytest.mark.parametrize("config", SCHEDULED_RATE, ids=ids(SCHEDULED_RATE))
def test_every_row_with_a_scheduled_learning_rate_refuses_to_set_it(config):
    tx = config.make(make_schedule(config.learning_rate))
    state = tx.init(PARAMS)
    for built in (tx, gc.GradientTransformation(tx.init, tx.update)):
        with pytest.raises(ValueError, match=r"^set_hyperparams: '(\S*/)?learning_rate' "
                                             r"follows a schedule"):
            gc.set_hyperparams(built, state, learning_rate=1e-3)


def test_values_are_checked():
    tx = gc.sgd(0.1)
    state = tx.init(PARAMS)
    with pytest.raises(TypeError, match="a schedule is fixed when the optimizer is built"):
        gc.set_hyperparams(tx, state, learning_rate=S.constant_schedule(0.1))
    with pytest.raises(ValueError, match=r"^set_hyperparams: learning_rate must be a scalar, "
                                         r"got an array of shape \(2,\)"):
        gc.set_hyperparams(tx, state, learning_rate=np.array([0.1, 0.2]))


def test_changes_between_steps_do_not_recompile_and_take_effect():
    """adamw's learning rate, b1 and weight decay changed from outside ``jit`` at steps 3 and 6:
    one trace, one compiled executable, and the same trajectory as Optax's
    ``inject_hyperparams(adamw)`` given the same changes."""
    tx = gc.adamw(1e-2, weight_decay=1e-3)
    reference = optax.inject_hyperparams(optax.adamw)(learning_rate=1e-2, weight_decay=1e-3)
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(None)
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return gc.apply_updates(params, updates), state

    @jax.jit
    def reference_step(params, state):
        updates, state = reference.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    changes = {3: {"learning_rate": 3e-2, "b1": 0.8}, 6: {"weight_decay": 0.1, "b1": 0.95}}
    params, state = PARAMS, tx.init(PARAMS)
    ref_params, ref_state = PARAMS, reference.init(PARAMS)
    for t in range(10):
        if t in changes:
            state = gc.set_hyperparams(tx, state, **changes[t])
            for name, value in changes[t].items():
                ref_state.hyperparams[name] = jnp.asarray(value)
        params, state = step(params, state)
        ref_params, ref_state = reference_step(ref_params, ref_state)
        chex.assert_trees_all_close(params, ref_params, rtol=1e-12, atol=1e-14)
    assert len(traces) == 1 and step._cache_size() == 1
    assert float(gc.get_hyperparam(state, "weight_decay")) == 0.1


def test_reaches_nested_chains_branches_and_wrappers():
    numerator = gc.chain(gc.ema(0.9, hyperparam_name="b1"), gc.scale(2.0))
    denominator = gc.chain(gc.square(), gc.ema(0.99, hyperparam_name="b2"))
    custom = gc.chain(gc.divide_by_sqrt(numerator, denominator, eps=1e-8),
                      gc.scale_by_learning_rate(0.1))
    groups = gc.param_groups({"matrices": custom, "vectors": gc.sgd(0.5, momentum=0.9)},
                             by_rank)
    tx = gc.accumulate_gradients(gc.skip_non_finite(groups, give_up_after=3), 2)
    state = tx.init(PARAMS)
    inner = "inner_opt_state/inner_state/inner_states"
    new = gc.set_hyperparams(tx, state, {
        f"{inner}/matrices/0/branches/0/1/step_size": 3.0,  # a scale inside a branch's chain
        f"{inner}/vectors/learning_rate": 0.25,
        "momentum": 0.5, "max_consecutive_errors": 7.0, "k": 4.0})
    got = {k: float(v) for k, v in gc.get_hyperparams(new).items()}
    assert got[f"{inner}/matrices/0/branches/0/1/step_size"] == 3.0
    assert got[f"{inner}/vectors/2/learning_rate"] == 0.25
    assert got[f"{inner}/matrices/1/learning_rate"] == 0.1
    assert got[f"{inner}/vectors/1/momentum"] == 0.5
    assert got["inner_opt_state/max_consecutive_errors"] == 7.0 and got["k"] == 4.0
    with pytest.raises(ValueError, match="'learning_rate' is ambiguous"):
        gc.set_hyperparams(tx, state, learning_rate=0.3)


def test_scheduled_in_one_group_constant_in_another():
    groups = gc.param_groups({"matrices": gc.adam(S.step_lr(0.1, 10)), "vectors": gc.adam(0.1)},
                             by_rank)
    tx = gc.masked(groups, {"kernel": True, "bias": True})
    state = tx.init(PARAMS)
    new = gc.set_hyperparams(tx, state, {"inner_state/inner_states/vectors/learning_rate": 0.2})
    assert float(gc.get_hyperparam(new, "inner_state/inner_states/vectors/learning_rate")) == 0.2
    with pytest.raises(ValueError, match="follows a schedule"):
        gc.set_hyperparams(tx, state, {"inner_state/inner_states/matrices/learning_rate": 0.2})


def test_set_inside_jit_with_a_traced_value():
    tx = gc.sgd(1.0)

    @jax.jit
    def step(state, lr):
        state = gc.set_hyperparams(tx, state, learning_rate=lr)
        return tx.update({"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}, state)

    updates, state = step(tx.init(PARAMS), 0.25)
    np.testing.assert_allclose(updates["bias"], -0.25)
    assert float(gc.get_hyperparam(state, "learning_rate")) == 0.25


def test_keeps_dtype_and_placement_of_a_replicated_state():
    tx = gc.sgd(0.1, momentum=0.9)
    devices = jax.local_devices()
    state = jax.pmap(lambda _: tx.init(PARAMS))(jnp.arange(len(devices)))
    traces = []

    @jax.pmap
    def step(state):
        traces.append(None)
        return tx.update({"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}, state)

    updates, state = step(state)
    state = gc.set_hyperparams(tx, state, learning_rate=np.float32(0.5))
    lr = gc.get_hyperparams(state)["2/learning_rate"]
    assert lr.shape == (len(devices),) and lr.dtype == jnp.float64
    assert lr.sharding == gc.get_hyperparams(state)["1/momentum"].sharding
    updates, state = step(state)
    np.testing.assert_allclose(updates["bias"], -0.5 * 1.9)  # b = 0.9·1 + 1
    assert len(traces) == 1


def test_optax_inject_hyperparams_states_are_read_and_set():
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    state = tx.init(PARAMS)
    assert set(gc.get_hyperparams(state)) == {"learning_rate"}
    state = gc.set_hyperparams(tx, state, learning_rate=0.3)
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, PARAMS), state)
    np.testing.assert_allclose(updates["bias"], -0.3)
