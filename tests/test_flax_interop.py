"""Flax NNX and Linen, and keyword extras through Optax's combinators.

- ``nnx.Optimizer``'s ``opt_state`` (every array wrapped in a Flax Variable) is read and set by
  ``get_hyperparams``, ``get_hyperparam``, ``set_hyperparams``, ``find_state``,
  ``describe_state`` and ``effective_learning_rate``; a value set there is used by the next
  ``optimizer.update`` without recompiling (traces counted).
- gradchain transformations are Optax ``GradientTransformationExtraArgs``: ``optax.chain``
  passes ``value=`` to ``reduce_on_plateau``, which then reduces on a plateau (numbers); they
  still unpack as 2-tuples and print their tree; gradchain imports without Optax.
- Linen's ``TrainState`` with a plateau: the README's step, which calls ``tx.update`` itself
  because ``apply_gradients`` forwards no extras.
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.training import train_state

import gradchain as gc


class Model(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(3, 2, rngs=rngs)

    def __call__(self, x):
        return self.linear(x)


X = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)
Y = jnp.ones((4, 2))


def model_loss(model):
    return jnp.mean((model(X) - Y) ** 2)


TRACES = []


@nnx.jit
def nnx_step(model, optimizer):
    TRACES.append(None)
    loss, grads = nnx.value_and_grad(model_loss)(model)
    optimizer.update(model, grads, value=loss)
    return loss


def kernel(model):
    return np.asarray(model.linear.kernel[...])


def test_nnx_opt_state_is_read_and_set_and_the_next_update_uses_the_value():
    model = Model(nnx.Rngs(0))
    tx = gc.adam(0.1)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    plain = tx.init(nnx.as_pure(nnx.state(model, nnx.Param)))
    assert gc.get_hyperparams(optimizer.opt_state).keys() == gc.get_hyperparams(plain).keys()
    assert float(gc.get_hyperparam(optimizer.opt_state, "b2")) == pytest.approx(0.999)
    nu = gc.find_state(optimizer.opt_state, "ema", hyperparam="b2", path="linear/kernel")
    assert isinstance(nu, jax.Array) and nu.shape == (3, 2)
    assert "hyperparams: {b2=float64[] = 0.999}" in gc.describe_state(optimizer.opt_state)

    nnx_step(model, optimizer)
    traces = len(TRACES)
    assert float(gc.get_hyperparam(optimizer.opt_state, "learning_rate")) == pytest.approx(0.1)
    returned = gc.set_hyperparams(tx, optimizer.opt_state, learning_rate=0.0)
    assert returned is optimizer.opt_state  # set in place, as nnx does
    assert float(gc.effective_learning_rate(optimizer.opt_state)) == 0.0
    before = kernel(model)
    nnx_step(model, optimizer)
    np.testing.assert_array_equal(kernel(model), before)  # the rate 0 was used
    gc.set_hyperparams(tx, optimizer.opt_state, learning_rate=0.05)
    nnx_step(model, optimizer)
    assert not np.allclose(kernel(model), before)
    assert len(TRACES) == traces
    # The rate set in the state stays; an optimizer built anew with 0.2 would replace it.
    assert gc.constructor_changes(tx, optimizer.opt_state, nnx.state(model, nnx.Param)) == {}
    changes = gc.constructor_changes(gc.adam(0.2), optimizer.opt_state,
                                     nnx.state(model, nnx.Param))
    np.testing.assert_allclose(changes["2/learning_rate"], (0.05, 0.2))


def test_nnx_optimizer_set_value_gives_sgd_numbers():
    model = Model(nnx.Rngs(1))
    tx = gc.sgd(0.1)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    optimizer.opt_state = gc.set_hyperparams(tx, optimizer.opt_state, learning_rate=0.25)
    grads = nnx.grad(model_loss)(model)
    expected = kernel(model) - 0.25 * np.asarray(grads.linear.kernel[...])
    optimizer.update(model, grads)
    np.testing.assert_allclose(kernel(model), expected, rtol=1e-6)


PLATEAU_SCALES = [1.0, 1.0, 0.5, 0.5, 0.25]  # patience=1, factor=0.5, a flat metric


def test_optax_chain_passes_value_to_reduce_on_plateau():
    tx = optax.chain(gc.sgd(0.1), gc.reduce_on_plateau(factor=0.5, patience=1))
    assert isinstance(gc.sgd(0.1), optax.GradientTransformationExtraArgs)
    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    for scale in PLATEAU_SCALES:
        updates, state = tx.update({"w": jnp.ones(3)}, state, params, value=2.0)
        np.testing.assert_allclose(updates["w"], -0.1 * scale)
    assert float(gc.effective_learning_rate(state)) == pytest.approx(0.1 * 0.25)
    # Optax's other wrappers keep the extras too.
    masked = optax.masked(gc.reduce_on_plateau(factor=0.5, patience=0), {"w": True})
    state = masked.init(params)
    for _ in range(2):
        updates, state = masked.update({"w": jnp.ones(3)}, state, params, value=2.0)
    np.testing.assert_allclose(updates["w"], 0.5)


def test_still_a_pair_with_its_description():
    tx = gc.sgd(0.1)
    init, update = tx
    assert (init, update) == (tx.init, tx.update) and len(tx) == 2
    assert repr(tx).splitlines()[0] == "chain()"
    assert "scale_by_learning_rate(learning_rate=0.1, flip_sign=True)" in repr(tx)


def test_nnx_optimizer_forwards_value_to_the_plateau():
    model = Model(nnx.Rngs(2))
    tx = gc.chain(gc.sgd(0.0), gc.reduce_on_plateau(factor=0.5, patience=1))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    for _ in PLATEAU_SCALES:
        nnx_step(model, optimizer)  # a rate of 0: the loss is flat
    assert float(gc.find_state(optimizer.opt_state, "scale")) == PLATEAU_SCALES[-1]


def test_linen_train_state_with_a_plateau():
    """The README's step: ``apply_gradients`` forwards no extras, so call ``tx.update``."""
    tx = gc.chain(gc.sgd(0.1), gc.reduce_on_plateau(factor=0.5, patience=1))
    state = train_state.TrainState.create(apply_fn=None, params={"w": jnp.zeros(3)}, tx=tx)

    @jax.jit
    def train_step(state):
        loss, grads = 2.0, {"w": jnp.ones(3)}  # a flat metric
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params, value=loss)
        return state.replace(step=state.step + 1, opt_state=opt_state,
                             params=optax.apply_updates(state.params, updates))

    expected = 0.0
    for scale in PLATEAU_SCALES:
        state = train_step(state)
        expected -= 0.1 * scale
    np.testing.assert_allclose(state.params["w"], expected)
    assert float(gc.effective_learning_rate(state.opt_state)) == pytest.approx(0.025)


def test_gradchain_imports_and_runs_without_optax():
    code = ("import sys; sys.modules['optax'] = None\n"
            "import jax.numpy as jnp, gradchain as gc\n"
            "tx = gc.adam(0.1); init, update = tx\n"
            "u, _ = tx.update({'w': jnp.ones(2)}, tx.init({'w': jnp.ones(2)}))\n"
            "assert type(tx).__mro__[1].__module__ == 'gradchain.core.transformation'\n"
            "print(float(u['w'][0]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert float(out.stdout) == pytest.approx(-0.1)


def test_a_state_built_on_nnx_params_keeps_its_variables_when_a_value_is_set():
    """``tx.init(nnx.state(model, nnx.Param))`` keeps moments as Variables and hyperparameters
    as arrays: the value is set, the Variables are kept as they are."""
    model = Model(nnx.Rngs(3))
    tx = gc.sgd(0.1, momentum=0.9)
    state = tx.init(nnx.state(model, nnx.Param))
    new = gc.set_hyperparams(tx, state, learning_rate=0.3)
    assert float(gc.get_hyperparam(new, "learning_rate")) == 0.3
    assert float(gc.get_hyperparam(state, "learning_rate")) == pytest.approx(0.1)
    old_leaves = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, nnx.Variable))
    new_leaves = jax.tree.leaves(new, is_leaf=lambda x: isinstance(x, nnx.Variable))
    variables = [x for x in old_leaves if isinstance(x, nnx.Variable)]
    assert variables and all(any(v is w for w in new_leaves) for v in variables)
