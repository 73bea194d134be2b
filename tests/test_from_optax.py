"""``from_optax_state``: resuming an Optax run with gradchain.

Each row runs Optax for ``BEFORE`` steps on the shared problem (``tests/problems.py``, float64,
closed loop), converts its state into the gradchain optimizer built with the same arguments,
and continues ``AFTER`` steps with gradchain: the params equal those of Optax continuing, to
float64 rounding. A gradchain run restarted from a fresh state differs, so the conversion is
what makes them equal. Then the refusals, the hyperparameter policy and the README's orbax
example.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import nnx
from flax.training import train_state

import gradchain as gc
from problems import DATA_W, INITIAL, initial_params, loss, max_relative_error

BEFORE, AFTER = 5, 4
LR = 0.05
SCHEDULE = optax.linear_schedule(0.1, 0.02, 20)
MASK = {"w": True, "b": False}


def _row(name, make_optax, make_gc, step=False):
    """``step``: Optax's state keeps no step count, so the conversion is given ``step=``."""
    return pytest.param(make_optax, make_gc, step, id=name)


ROWS = [
    _row("adam", lambda: optax.adam(LR), lambda: gc.adam(LR)),
    _row("adam-args", lambda: optax.adam(LR, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-9),
         lambda: gc.adam(LR, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-9)),
    _row("adam-nesterov", lambda: optax.adam(LR, nesterov=True),
         lambda: gc.adam(LR, nesterov=True)),
    _row("adam-schedule", lambda: optax.adam(SCHEDULE), lambda: gc.adam(SCHEDULE)),
    _row("adamw", lambda: optax.adamw(LR, weight_decay=0.1),
         lambda: gc.adamw(LR, weight_decay=0.1)),
    _row("adamw-mask", lambda: optax.adamw(LR, weight_decay=0.1, mask=MASK),
         lambda: gc.adamw(LR, weight_decay=0.1, mask=MASK)),
    _row("sgd", lambda: optax.sgd(LR), lambda: gc.sgd(LR)),
    _row("sgd-momentum", lambda: optax.sgd(LR, momentum=0.9),
         lambda: gc.sgd(LR, momentum=0.9), step=True),
    _row("sgd-nesterov", lambda: optax.sgd(LR, momentum=0.9, nesterov=True),
         lambda: gc.sgd(LR, momentum=0.9, nesterov=True), step=True),
    _row("sgd-momentum-schedule", lambda: optax.sgd(SCHEDULE, momentum=0.9),
         lambda: gc.sgd(SCHEDULE, momentum=0.9)),
    _row("rmsprop", lambda: optax.rmsprop(0.01), lambda: gc.rmsprop(0.01)),
    _row("rmsprop-args", lambda: optax.rmsprop(0.01, decay=0.95, eps=1e-4, initial_scale=0.1,
                                               eps_in_sqrt=False),
         lambda: gc.rmsprop(0.01, decay=0.95, eps=1e-4, initial_scale=0.1, eps_in_sqrt=False)),
    _row("rmsprop-centered", lambda: optax.rmsprop(0.01, centered=True),
         lambda: gc.rmsprop(0.01, centered=True)),
    _row("rmsprop-momentum", lambda: optax.rmsprop(0.01, momentum=0.9),
         lambda: gc.rmsprop(0.01, momentum=0.9), step=True),
    _row("rmsprop-centered-nesterov", lambda: optax.rmsprop(0.01, centered=True, momentum=0.9,
                                                           nesterov=True),
         lambda: gc.rmsprop(0.01, centered=True, momentum=0.9, nesterov=True), step=True),
    _row("rmsprop-bias-correction-momentum",
         lambda: optax.rmsprop(0.01, momentum=0.9, bias_correction=True),
         lambda: gc.rmsprop(0.01, momentum=0.9, bias_correction=True)),
    _row("inject-hyperparams-adam", lambda: optax.inject_hyperparams(optax.adam)(LR),
         lambda: gc.adam(LR)),
    _row("inject-hyperparams-sgd-schedule",
         lambda: optax.inject_hyperparams(optax.sgd)(SCHEDULE, momentum=0.9),
         lambda: gc.sgd(SCHEDULE, momentum=0.9)),
    # float64 buffers: with float32 ones the two libraries round the running mean differently
    # (3e-10 apart from the start, conversion or not).
    _row("multi-steps-adam",
         lambda: optax.MultiSteps(optax.adam(LR), 3, accumulator_dtype=jnp.float64),
         lambda: gc.MultiSteps(gc.adam(LR), 3, accumulator_dtype=jnp.float64)),
    _row("multi-steps-sgd-momentum",
         lambda: optax.MultiSteps(optax.sgd(LR, momentum=0.9), 2, accumulator_dtype=jnp.float64),
         lambda: gc.accumulate_gradients(gc.sgd(LR, momentum=0.9), 2)),
    _row("chain-clip-adam",
         lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(LR)),
         lambda: gc.chain(gc.clip_by_global_norm(1.0), gc.adam(LR))),
]


GRAD = jax.jit(jax.grad(loss))


def _steps(tx, params, state, steps):
    """``steps`` closed-loop updates, op by op: on this problem cheaper than compiling, except
    for gradient accumulation, whose ``lax.cond`` would be compiled anew at every call."""
    update = jax.jit(tx.update) if "mini_step" in getattr(state, "_fields", ()) else tx.update
    path = []
    for _ in range(steps):
        updates, state = update(GRAD(params), state, params)
        params = optax.apply_updates(params, updates)
        path.append(params)
    return params, state, jax.tree.map(lambda *p: jnp.stack(p), *path)


@pytest.mark.parametrize("make_optax, make_gc, needs_step", ROWS)
def test_resuming_with_gradchain_continues_the_optax_run(make_optax, make_gc, needs_step):
    reference, tx = make_optax(), make_gc()
    params = initial_params(jnp.float64)
    params, optax_state, _ = _steps(reference, params, reference.init(params), BEFORE)
    state = gc.from_optax_state(tx, optax_state, params,
                                **({"step": BEFORE} if needs_step else {}))
    chex.assert_trees_all_equal_structs(state, tx.init(params))

    expected = _steps(reference, params, optax_state, AFTER)[2]
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(expected))
    assert max_relative_error(_steps(tx, params, state, AFTER)[2], expected) < 1e-13
    if jax.tree.leaves(optax_state):             # plain SGD has no state to carry over
        restarted = _steps(tx, params, tx.init(params), AFTER)[2]
        assert max_relative_error(restarted, expected) > 1e-4


def _optax_state(tx, steps=2):
    params = initial_params(jnp.float64)
    return _steps(tx, params, tx.init(params), steps)[1]


PARAMS = initial_params(jnp.float64)

REFUSALS = [
    pytest.param(gc.sgd(LR, momentum=0.9), lambda: _optax_state(optax.adam(LR)), {},
                 ["the Optax state does not fit", "Adam's first moment (0/mu)",
                  "momentum buffer (1/buffer)"], id="another-algorithm"),
    pytest.param(gc.sgd(LR, momentum=0.9), lambda: _optax_state(optax.sgd(LR)), {"step": 2},
                 ["Optax state holds no statistics", "momentum buffer"], id="sgd-no-momentum"),
    pytest.param(gc.rmsprop(0.01), lambda: _optax_state(optax.rmsprop(0.01, centered=True)),
                 {}, ["centred RMSProp's mean (0/mu)", "expects RMSProp's second moment"],
                 id="rmsprop-centered-into-plain"),
    pytest.param(gc.amsgrad(LR), lambda: _optax_state(optax.amsgrad(LR)), {},
                 ["at 0 is optax", "ScaleByAmsgradState (fields count, mu, nu, nu_max)"],
                 id="unknown-optax-state"),
    pytest.param(gc.amsgrad(LR), lambda: _optax_state(optax.adam(LR)), {},
                 ["gradchain's state at 1/branches/1/2 is a MaxVState holding max,"],
                 id="gradchain-statistic-optax-lacks"),
    pytest.param(gc.adam(LR), lambda: optax.MultiSteps(optax.adam(LR), 2).init(PARAMS), {},
                 ["accumulated gradients (acc_grads)", "wrap the gradchain optimizer in "
                  "gc.MultiSteps", "optax_state.inner_opt_state"], id="multi-steps-into-adam"),
    pytest.param(gc.accumulate_gradients(gc.adam(LR), 2),
                 lambda: optax.MultiSteps(optax.adam(LR), 2).init(PARAMS), {},
                 ["accumulated gradients (optax_state at acc_grads)", "is float32 there, float64",
                  "accumulator_dtype"], id="multi-steps-buffer-dtype"),
    pytest.param(gc.MultiSteps(gc.sgd(LR, momentum=0.9), 2),
                 lambda: optax.MultiSteps(optax.sgd(LR, momentum=0.9), 2).init(PARAMS),
                 {"step": 3}, ["optax_state at gradient_step = 0", "step = 3"],
                 id="multi-steps-step-counts-inner-updates"),
    pytest.param(gc.adam(LR), lambda: (_optax_state(optax.adam(LR)),) * 2, {},
                 ["Adam's first moment 2 times (0/0/mu, 1/0/mu)"], id="two-adams"),
    pytest.param(gc.adam(LR), lambda: optax.adam(LR).init({"w": PARAMS["w"]}), {},
                 ["optax_state at 0/mu", "another params tree", "only in gradchain's: ['b']"],
                 id="another-tree"),
    pytest.param(gc.adam(LR), lambda: optax.adam(LR).init(
        {"w": PARAMS["w"], "b": jnp.zeros(4)}), {},
        ["leaf b has shape (4,) there, (3,) in gradchain's"], id="another-shape"),
    pytest.param(gc.adam(LR), lambda: _optax_state(optax.adam(LR, mu_dtype=jnp.float32)), {},
                 ["leaf b is float32 there, float64 in gradchain's", "mu_dtype"],
                 id="another-dtype"),
    pytest.param(gc.sgd(LR, momentum=0.9), lambda: _optax_state(optax.sgd(LR, momentum=0.9)),
                 {}, ["state at 1/count", "holds no step count", "pass step="],
                 id="missing-step"),
    pytest.param(gc.adam(LR), lambda: _optax_state(optax.adam(LR)), {"step": 3},
                 ["step counts disagree", "optax_state at 0/count = 2", "step = 3"],
                 id="step-disagrees"),
    pytest.param(gc.nadam(LR, momentum_decay=0.004),
                 lambda: _optax_state(optax.adam(LR, nesterov=True)), {},
                 ["varying momentum", "momentum_decay"], id="nadam-momentum-decay"),
    pytest.param(gc.adam(LR), lambda: [3], {}, ["at 0 is of type int"], id="not-a-state"),
]


@pytest.mark.parametrize("tx, make_state, kwargs, phrases", REFUSALS)
def test_refuses_a_state_that_does_not_fit(tx, make_state, kwargs, phrases):
    with pytest.raises(ValueError) as error:
        gc.from_optax_state(tx, make_state(), PARAMS, **kwargs)
    message = str(error.value)
    assert message.startswith("from_optax_state: ")
    for phrase in phrases:
        assert phrase in message


def test_the_constructors_hyperparameters_are_in_force():
    optax_state = _optax_state(optax.inject_hyperparams(optax.adam)(LR, b1=0.8))
    optax_state.hyperparams["learning_rate"] = jnp.asarray(0.5)
    state = gc.from_optax_state(gc.adam(0.01), optax_state, PARAMS)
    assert float(gc.get_hyperparam(state, "learning_rate")) == 0.01
    assert float(gc.get_hyperparam(state, "b1")) == 0.9
    chex.assert_trees_all_equal(gc.find_state(state, "ema", hyperparam="b1"),
                                optax_state.inner_state[0].mu)


def test_readme_checkpoint_examples(tmp_path):
    """The README's two ways: orbax restoring against the Optax state's structure, and plain
    arrays put back into that structure."""
    optax_tx = optax.adam(LR)
    optax_state = _optax_state(optax_tx)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "ckpt", {"params": PARAMS, "opt_state": optax_state})
    checkpointer.wait_until_finished()

    target = {"params": PARAMS, "opt_state": optax_tx.init(PARAMS)}
    restored = checkpointer.restore(tmp_path / "ckpt", jax.eval_shape(lambda: target))
    state = gc.from_optax_state(gc.adam(LR), restored["opt_state"], restored["params"])
    direct = gc.from_optax_state(gc.adam(LR), optax_state, PARAMS)
    chex.assert_trees_all_equal(state, direct)

    np.savez(tmp_path / "leaves.npz", *jax.tree.leaves(optax_state))
    with np.load(tmp_path / "leaves.npz") as saved:
        leaves = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    rebuilt = jax.tree.unflatten(jax.tree.structure(optax_tx.init(PARAMS)), leaves)
    chex.assert_trees_all_equal(gc.from_optax_state(gc.adam(LR), rebuilt, PARAMS), direct)
    assert int(state[1].branches[1][1].count) == 2          # b2's debiased EMA
    assert np.any(np.asarray(gc.find_state(state, "ema", hyperparam="b2")["w"]) > 0)


def test_flax_train_state_switches_to_gradchain():
    """Linen's ``TrainState``: replace ``tx`` and ``opt_state``; ``step`` is the step count
    Optax's momentum SGD does not keep."""
    reference, tx = optax.sgd(LR, momentum=0.9), gc.sgd(LR, momentum=0.9)
    state = train_state.TrainState.create(apply_fn=None, params=PARAMS, tx=reference)
    for _ in range(BEFORE):
        state = state.apply_gradients(grads=GRAD(state.params))
    resumed = state.replace(tx=tx, opt_state=gc.from_optax_state(
        tx, state.opt_state, state.params, step=state.step))
    for _ in range(AFTER):
        state = state.apply_gradients(grads=GRAD(state.params))
        resumed = resumed.apply_gradients(grads=GRAD(resumed.params))
    assert int(resumed.step) == BEFORE + AFTER
    chex.assert_trees_all_close(resumed.params, state.params, rtol=1e-13, atol=0)


class _Linear(nnx.Module):
    def __init__(self):
        self.kernel = nnx.Param(jnp.asarray(INITIAL["w"]).reshape(3, 2))
        self.bias = nnx.Param(jnp.asarray(INITIAL["b"][:2]))


def _nnx_loss(model):
    x = jnp.asarray(DATA_W[:4, :3])
    return jnp.sum(jnp.sin(x @ model.kernel[...] + model.bias[...]) ** 2)


def test_nnx_optimizer_switches_to_gradchain():
    """``nnx.Optimizer`` wraps the state's arrays in ``OptVariable``s: the conversion reads
    through them, and the README's loop writes the result into a gradchain ``nnx.Optimizer``."""
    model, twin = _Linear(), _Linear()
    optimizer = nnx.Optimizer(model, optax.adam(LR), wrt=nnx.Param)
    for _ in range(2):
        optimizer.update(model, nnx.grad(_nnx_loss)(model))
    nnx.update(twin, nnx.state(model))

    resumed = nnx.Optimizer(twin, gc.adam(LR), wrt=nnx.Param)
    state = gc.from_optax_state(gc.adam(LR), optimizer.opt_state, nnx.state(twin, nnx.Param))
    for variable, value in zip(jax.tree.leaves(resumed.opt_state, is_leaf=_is_variable),
                               jax.tree.leaves(state)):
        variable.set_value(value)
    for _ in range(2):
        optimizer.update(model, nnx.grad(_nnx_loss)(model))
        resumed.update(twin, nnx.grad(_nnx_loss)(twin))
    chex.assert_trees_all_close(nnx.state(twin), nnx.state(model), rtol=1e-13, atol=1e-16)
    assert float(jnp.max(jnp.abs(model.kernel[...] - _Linear().kernel[...]))) > 0.05


def _is_variable(x):
    return isinstance(x, nnx.Variable)
