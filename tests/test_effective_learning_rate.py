"""Run-time control of a scheduled learning rate (``learning_rate_scale``) and the effective
learning rate for logging (schedule x run-time scale x multipliers x plateau scale)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc

PARAMS = {"w": jnp.zeros(3)}
ONES = {"w": jnp.ones(3)}


def schedule(t):
    return 0.1 * (t + 1.0)


def test_learning_rate_scale_scales_the_rest_of_a_schedule_without_recompiling():
    tx = gc.sgd(schedule)
    state = tx.init(PARAMS)
    assert float(gc.get_hyperparam(state, "learning_rate_scale")) == 1.0
    step = jax.jit(tx.update)
    rates = []
    for t in range(4):
        if t == 2:
            state = gc.set_hyperparams(tx, state, learning_rate_scale=0.5)
        updates, state = step(ONES, state)
        rates.append(-float(updates["w"][0]))
        assert float(gc.effective_learning_rate(state)) == pytest.approx(rates[-1], rel=1e-15)
    np.testing.assert_allclose(rates, [0.1, 0.2, 0.5 * 0.3, 0.5 * 0.4], rtol=1e-15)
    assert step._cache_size() == 1
    # The schedule's own value is still what get_hyperparam shows.
    assert float(gc.get_hyperparam(state, "learning_rate")) == pytest.approx(0.4)


def test_setting_a_scheduled_rate_points_to_its_scale():
    tx = gc.sgd(schedule)
    with pytest.raises(ValueError, match=r"'2/learning_rate' follows a schedule, "
                                         r".*set '2/learning_rate_scale'"):
        gc.set_hyperparams(tx, tx.init(PARAMS), learning_rate=0.1)


def test_a_constant_rate_has_no_scale_entry_and_is_its_own_effective_rate():
    state = gc.adam(3e-3).init(PARAMS)
    assert not any(k.endswith("_scale") for k in gc.get_hyperparams(state))
    assert float(gc.effective_learning_rate(state)) == pytest.approx(3e-3)


def test_schedule_times_scale_times_multiplier_times_plateau():
    """AdamW in the paper's form (base rate α, multiplier η_t), its rate scaled at run time,
    then a plateau that halves the scale after every second flat reading."""
    tx = gc.chain(gc.adamw(2.0, multiplier=schedule),
                  gc.reduce_on_plateau(factor=0.5, patience=1))
    state = tx.init(PARAMS)
    state = gc.set_hyperparams(tx, state, multiplier_scale=0.3)
    update = jax.jit(tx.update)
    for _ in range(3):
        _, state = update(ONES, state, PARAMS, value=1.0)
    # η_2 = 0.3, times the scale 0.3, times α = 2, times the plateau's 0.5 (third reading)
    assert float(gc.effective_learning_rate(state)) == pytest.approx(2.0 * 0.3 * 0.3 * 0.5)
    inside = jax.jit(gc.effective_learning_rate)(state)
    assert float(inside) == pytest.approx(0.09)


def test_parameter_groups_are_told_apart():
    tx = gc.param_groups({"fast": gc.chain(gc.sgd(0.1), gc.reduce_on_plateau(factor=0.5,
                                                                            patience=0)),
                          "slow": gc.sgd(0.1)}, {"a": "fast", "b": "slow"})
    params = {"a": jnp.zeros(2), "b": jnp.zeros(2)}
    state = tx.init(params)
    for _ in range(2):
        _, state = tx.update({"a": jnp.ones(2), "b": jnp.ones(2)}, state, params, value=1.0)
    paths = [p for p in gc.get_hyperparams(state) if p.endswith("learning_rate")]
    # Both groups' rates are 0.1, but one of them is halved by its plateau.
    with pytest.raises(ValueError, match="different effective values"):
        gc.effective_learning_rate(state)
    fast, slow = (next(p for p in paths if f"/{g}/" in p) for g in ("fast", "slow"))
    assert float(gc.effective_learning_rate(state, fast)) == pytest.approx(0.1 * 0.5)
    assert float(gc.effective_learning_rate(state, slow)) == pytest.approx(0.1)
