"""Constructor versus state: "the latest change wins", and Optax's ``inject_hyperparams``.

- Every alias with an Optax twin, wrapped in ``optax.inject_hyperparams``, follows the injected
  values exactly as Optax's alias does: a warm-up schedule from 0, and a value set in the
  inject state mid-run (float64 closed loop, the parity tolerance 1e-10; measured: identical).
- A state restored into an optimizer built with the same numbers continues bit for bit with the
  values set at run time, without recompiling; built with a new constant, the new constant is
  used from the next update on, ``constructor_changes`` says so beforehand, and a value set
  afterwards wins again.
- ``jax.grad`` reaches a traced constructor value and a traced value set in the state.
- ``skip_non_finite`` (a hand-written transformation) follows the same rule.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
from problems import initial_params, loss, max_relative_error
from registry import WITH_OPTAX

INITIAL = initial_params(jnp.float64)



def _per_alias(rows):
    """One row per alias: the one with a mask if any (a callable that Optax must be told is
    not a schedule), else its first family row (``registry.FAMILIES``), else its first row."""
    chosen = {}
    for c in rows:
        rank = (any(callable(v) for _, v in c.alias[1]), not c.variant)
        if c.alias[0] not in chosen or rank > chosen[c.alias[0]][0]:
            chosen[c.alias[0]] = (rank, c)
    return [c for _, c in chosen.values()]


ALIAS_ROWS = _per_alias([c for c in WITH_OPTAX if c.alias is not None])
WARMUP_STEPS, SET_AT, STEPS = 4, 3, 6


def _injected(library, config, learning_rate):
    name, kwargs = config.alias
    kwargs = dict(kwargs)
    static = [k for k, v in kwargs.items() if callable(v)]
    factory = optax.inject_hyperparams(getattr(library, name), static_args=static)
    return factory(learning_rate, **kwargs)


def _run(tx, set_to=None):
    """``STEPS`` closed-loop updates; before update ``SET_AT`` the inject state's learning rate
    is set to ``set_to`` if given (Optax's way: ``state.hyperparams["learning_rate"] = x``).
    Returns the params after each update."""
    def step(carry, t):
        params, state = carry
        if set_to is not None:
            rate = state.hyperparams["learning_rate"]
            state.hyperparams["learning_rate"] = jnp.where(t == SET_AT, set_to, rate)
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = gc.apply_updates(params, updates)
        return (params, state), params

    return jax.lax.scan(step, (INITIAL, tx.init(INITIAL)), jnp.arange(STEPS))[1]


@functools.partial(jax.jit, static_argnums=0)
def _inject_runs(config):
    peak = config.learning_rate
    warmup = optax.linear_schedule(0.0, peak, WARMUP_STEPS)
    return {library.__name__: (_run(_injected(library, config, warmup)),
                               _run(_injected(library, config, peak), 0.5 * peak))
            for library in (gc, optax)}


@pytest.mark.parametrize("config", ALIAS_ROWS, ids=[c.name for c in ALIAS_ROWS])
def test_inject_hyperparams_drives_gradchain_aliases_like_optax(config):
    """A warm-up from 0 (the issue's case: the update read the rate stored at ``init``, 0, and
    never trained), and a value set in the inject state mid-run."""
    runs = _inject_runs(config)
    for ours, reference in zip(runs["gradchain"], runs["optax"]):
        assert max_relative_error(ours, reference) <= 1e-10
    warmed = runs["gradchain"][0]
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[0], warmed), INITIAL)  # rate 0
    final = jax.tree.map(lambda x: x[-1], warmed)
    assert float(loss(final)) < float(loss(INITIAL))


TX = functools.partial(gc.sgd, momentum=0.9)
_TRACES = []


@functools.partial(jax.jit, static_argnums=0)
def _step(learning_rate, params, state):
    _TRACES.append(learning_rate)
    updates, state = TX(learning_rate).update(jax.grad(loss)(params), state, params)
    return gc.apply_updates(params, updates), state


def _steps(learning_rate, params, state, n):
    for _ in range(n):
        params, state = _step(learning_rate, params, state)
    return params, state


def _through_host(tree):
    """A save-and-restore round trip (what a checkpoint gives back: new device arrays)."""
    return jax.tree.map(jnp.asarray, jax.tree.map(np.asarray, tree))


def test_resume_unchanged_is_bit_identical_and_keeps_values_set_at_run_time():
    params, state = _steps(0.02, INITIAL, TX(0.02).init(INITIAL), 3)
    state = gc.set_hyperparams(TX(0.02), state, learning_rate=0.005, momentum=0.5)
    traces = len(_TRACES)
    expected = _steps(0.02, params, state, 3)
    restored_params, restored = _through_host((params, state))
    assert gc.constructor_changes(TX(0.02), restored, restored_params) == {}
    resumed = _steps(0.02, restored_params, restored, 3)
    chex.assert_trees_all_equal(resumed, expected)
    assert len(_TRACES) == traces  # the step compiled before saving serves both runs
    assert float(gc.get_hyperparam(resumed[1], "learning_rate")) == 0.005
    # The values set at run time were used: a run at the constructor's numbers differs.
    at_constructor_values = _steps(0.02, params, TX(0.02).init(INITIAL), 3)
    assert not np.allclose(resumed[0]["w"], at_constructor_values[0]["w"])


def test_resume_with_a_new_constant_uses_it_says_so_and_later_sets_win_again():
    params, state = _steps(0.02, INITIAL, TX(0.02).init(INITIAL), 3)
    state = _through_host(state)
    changes = gc.constructor_changes(TX(0.1), state, params)
    assert list(changes) == ["2/learning_rate"]
    np.testing.assert_array_equal(changes["2/learning_rate"], (0.02, 0.1))

    trace = jax.grad(loss)(params)
    momentum = jax.tree.map(lambda m, g: 0.9 * m + g, gc.find_state(state, "buffer"), trace)
    updates, new_state = TX(0.1).update(trace, state, params)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda m: -0.1 * m, momentum),
                                rtol=1e-15)
    assert float(gc.get_hyperparam(new_state, "learning_rate")) == 0.1
    assert gc.constructor_changes(TX(0.1), new_state, params) == {}

    # Now the constructor is what was last seen: a value set in the state wins.
    new_state = gc.set_hyperparams(TX(0.1), new_state, learning_rate=0.02)
    _, after = TX(0.1).update(trace, new_state, params)
    assert float(gc.get_hyperparam(after, "learning_rate")) == 0.02


def test_the_issue_case_sgd_state_of_1e3_stepped_by_sgd_of_1():
    state = gc.sgd(1e-3).init(INITIAL)
    grads = jax.grad(loss)(INITIAL)
    updates, _ = jax.jit(gc.sgd(1.0).update)(grads, state, INITIAL)
    chex.assert_trees_all_equal(updates, jax.tree.map(jnp.negative, grads))


def test_grad_reaches_a_traced_constructor_value_and_a_traced_value_set_in_the_state():
    grads = jax.grad(loss)(INITIAL)
    # d loss(θ - γ g) / dγ = -∇loss(θ - γ g) · g
    def expected(rate):
        after = jax.tree.map(lambda p, g: p - rate * g, INITIAL, grads)
        return -sum(jnp.vdot(a, g) for a, g in zip(jax.tree.leaves(jax.grad(loss)(after)),
                                                    jax.tree.leaves(grads)))

    def one_step(tx, state):
        updates, _ = tx.update(grads, state, INITIAL)
        return loss(gc.apply_updates(INITIAL, updates))

    other = gc.sgd(0.1).init(INITIAL)  # a state built from numbers, not from the tracer
    cases = {
        "own state": lambda r: one_step(gc.sgd(r), gc.sgd(r).init(INITIAL)),
        "another state, same value": lambda r: one_step(gc.sgd(r), other),
        "value set in the state": lambda r: one_step(
            gc.sgd(0.1), gc.set_hyperparams(gc.sgd(0.1), other, learning_rate=r)),
    }
    for name, f in cases.items():
        for rate in (0.1, 0.3):
            np.testing.assert_allclose(jax.grad(f)(rate), expected(rate), rtol=1e-12,
                                       err_msg=name)


def test_skip_non_finite_follows_the_same_policy():
    nan = {"w": jnp.full(6, jnp.nan), "b": jnp.zeros(3)}
    patient = gc.skip_non_finite(gc.sgd(0.1), give_up_after=3)
    state = patient.init(INITIAL)
    # Restored into a wrapper built with give_up_after=0: the new constant is used at once.
    updates, _ = gc.skip_non_finite(gc.sgd(0.1), give_up_after=0).update(nan, state)
    assert np.isnan(updates["w"]).all()
    # Built unchanged, a value set in the state is used.
    state = gc.set_hyperparams(patient, state, max_consecutive_errors=0)
    updates, state = patient.update(nan, state)
    assert np.isnan(updates["w"]).all()
    assert float(gc.get_hyperparam(state, "max_consecutive_errors")) == 0
