"""gradchain in Flax and with Optax, and the README's build-it-yourself Adam and AMSGrad.

- Flax: ``TrainState`` (linen) and ``nnx.Optimizer`` run a gradchain optimizer exactly like the
  Optax alias (float64, jitted, closed loop).
- Optax transformations inside a gradchain chain and gradchain transformations inside an Optax
  chain give the all-Optax numbers (open loop on recorded gradients; float64 to 1e-13).
- Adam and AMSGrad built from primitives as in README.md equal ``gc.adam``/``gc.amsgrad`` bit for
  bit.
"""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.training import train_state

import gradchain as gc
from problems import max_relative_error, trajectory

STEPS = 6
INPUTS = jnp.asarray(np.sin(np.arange(24.0)).reshape(8, 3))
TARGETS = jnp.asarray(np.cos(np.arange(8.0) * 0.7).reshape(8, 1))


def _assert_moved_and_equal(params, reference, initial):
    """Equal to the reference (to float64 rounding, where XLA may fuse the two programs
    differently), and far from the initial params (so equality is not trivial)."""
    chex.assert_trees_all_close(params, reference, rtol=1e-13, atol=1e-15)
    moved = max(float(jnp.max(jnp.abs(p - q))) for p, q in
                zip(jax.tree.leaves(reference), jax.tree.leaves(initial)))
    assert moved > 1e-2


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Dense(4, dtype=jnp.float64, param_dtype=jnp.float64)(x))
        return nn.Dense(1, dtype=jnp.float64, param_dtype=jnp.float64)(x)


@jax.jit
def _train_state_step(state):
    def loss(params):
        return jnp.mean((state.apply_fn({"params": params}, INPUTS) - TARGETS) ** 2)

    return state.apply_gradients(grads=jax.grad(loss)(state.params))


@pytest.mark.parametrize("make", [
    lambda lib: lib.adam(0.05),
    lambda lib: lib.rmsprop(0.01, centered=True, momentum=0.9, nesterov=True),
], ids=["adam", "rmsprop-centered-nesterov"])
def test_flax_train_state(make):
    model = LinenMLP()
    params = model.init(jax.random.key(0), INPUTS)["params"]
    final = {}
    for lib in (gc, optax):
        state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=make(lib))
        for _ in range(STEPS):
            state = _train_state_step(state)
        assert int(state.step) == STEPS
        final[lib.__name__] = state.params
    _assert_moved_and_equal(final["gradchain"], final["optax"], params)


class NnxMLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(3, 4, param_dtype=jnp.float64, dtype=jnp.float64, rngs=rngs)
        self.out = nnx.Linear(4, 1, param_dtype=jnp.float64, dtype=jnp.float64, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


@nnx.jit
def _nnx_step(model, optimizer):
    grads = nnx.grad(lambda m: jnp.mean((m(INPUTS) - TARGETS) ** 2))(model)
    optimizer.update(model, grads)


def test_flax_nnx_optimizer():
    """AdamW: the params reach the decoupled weight decay through ``nnx.Optimizer``."""
    final = {}
    for lib in (gc, optax):
        model = NnxMLP(nnx.Rngs(0))
        initial = nnx.to_pure_dict(nnx.state(model, nnx.Param))
        optimizer = nnx.Optimizer(model, lib.adamw(0.05, weight_decay=0.1), wrt=nnx.Param)
        for _ in range(STEPS):
            _nnx_step(model, optimizer)
        assert int(optimizer.step[...]) == STEPS
        final[lib.__name__] = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    _assert_moved_and_equal(final["gradchain"], final["optax"], initial)


MIXED_CHAINS = [
    ("optax-clip-in-gradchain-chain",
     lambda: gc.chain(optax.clip_by_global_norm(1.0), gc.adam(0.03)),
     lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.03))),
    ("gradchain-adam-in-optax-chain",
     lambda: optax.chain(gc.scale_by_adam(), optax.scale(-0.03)),
     lambda: optax.adam(0.03)),
    ("gradchain-momentum-between-optax",
     lambda: optax.chain(optax.clip(0.5), gc.scale_by_momentum(0.9), optax.scale(-0.02)),
     lambda: optax.chain(optax.clip(0.5), optax.trace(0.9), optax.scale(-0.02))),
    ("optax-inside-gradchain-inside-optax",
     lambda: optax.chain(gc.chain(optax.scale_by_rms(0.9), gc.scale_by_learning_rate(0.01)),
                         optax.identity()),
     lambda: optax.rmsprop(0.01)),
]


# Operation by operation (eagerly) the mixed chains give Optax's numbers bit for bit; compiled,
# XLA may fuse two different programs differently, which moves float32 results by an ulp or two.
# float64 at 1e-13 is the sharp check (an eps moved into the root changes it by ~1e-7).
TOLERANCE = {jnp.float32: 1e-6, jnp.float64: 1e-13}
RUNS = 50


@functools.cache
def _recorded_grads(dtype):
    """Gradients of an Adam run on the shared problem: the open-loop input of every comparison."""
    return trajectory(gc.adam(0.03), dtype, steps=RUNS)[1]


@pytest.mark.parametrize("mixed, reference, dtype", [
    (mixed, reference, dtype) for name, mixed, reference in MIXED_CHAINS
    for dtype in ([jnp.float64, jnp.float32] if name == "gradchain-adam-in-optax-chain"
                  else [jnp.float64])],
    ids=[f"{name}-{dtype.__name__}" for name, _, _ in MIXED_CHAINS
         for dtype in ([jnp.float64, jnp.float32] if name == "gradchain-adam-in-optax-chain"
                       else [jnp.float64])])
def test_mixed_optax_and_gradchain_chains_match_optax(mixed, reference, dtype):
    grads = _recorded_grads(dtype)
    expected, _ = trajectory(reference(), dtype, steps=RUNS, grads=grads)
    actual, _ = trajectory(mixed(), dtype, steps=RUNS, grads=grads)
    assert max_relative_error(actual, expected) <= TOLERANCE[dtype]
    assert max_relative_error(expected, {k: v[:1] for k, v in expected.items()}) > 1e-2


def test_optax_extra_args_reach_optax_parts_of_a_gradchain_chain():
    """``value=loss`` passed to a gradchain chain reaches an Optax transformation that needs it
    (Polyak step size) and is kept from those that do not accept extra arguments."""
    params = {"w": jnp.array([1.0, -2.0, 0.5])}
    grads = {"w": jnp.array([0.3, -0.1, 0.2])}
    mixed = gc.chain(optax.clip(1.0), optax.scale_by_polyak(max_learning_rate=2.0),
                     gc.scale_by_learning_rate(0.5))
    reference = optax.chain(optax.clip(1.0), optax.scale_by_polyak(max_learning_rate=2.0),
                            optax.scale(-0.5))
    actual, _ = mixed.update(grads, mixed.init(params), params, value=jnp.asarray(0.7))
    expected, _ = reference.update(grads, reference.init(params), params,
                                   value=jnp.asarray(0.7))
    chex.assert_trees_all_close(actual, expected, rtol=1e-15)
    assert float(jnp.max(jnp.abs(expected["w"]))) > 0.1


def _readme_adam_and_amsgrad(b1=0.9, b2=0.999, eps=1e-8, lr=0.03):
    """The README's code, verbatim."""
    m_hat = gc.ema(b1, debias=True, hyperparam_name="b1")          # m_t / (1 - b1^t)
    v_hat = gc.chain(gc.square(), gc.ema(b2, debias=True, hyperparam_name="b2"))
    my_adam = gc.chain(gc.divide_by_sqrt(m_hat, v_hat, eps=eps), gc.scale_by_learning_rate(lr))
    v_max = gc.chain(gc.square(), gc.ema(b2, debias=True, hyperparam_name="b2"), gc.max_v())
    my_amsgrad = gc.chain(gc.divide_by_sqrt(m_hat, v_max, eps=eps), gc.scale_by_learning_rate(lr))
    return my_adam, my_amsgrad


def _split_adam(b1=0.9, b2=0.999, eps=1e-8, lr=0.03):
    """Adam with each bias correction a stage of its own after its EMA (the order torch's
    AMSGrad needs, with ``max_v`` between them)."""
    m_hat = gc.chain(gc.ema(b1, hyperparam_name="b1"), gc.bias_correction(b1, hyperparam_name="b1"))
    v_hat = gc.chain(gc.square(), gc.ema(b2, hyperparam_name="b2"),
                     gc.bias_correction(b2, hyperparam_name="b2"))
    return gc.chain(gc.divide_by_sqrt(m_hat, v_hat, eps=eps), gc.scale_by_learning_rate(lr))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
def test_readme_adam_and_amsgrad_from_primitives_are_the_aliases_bit_for_bit(dtype):
    """Both sides run by the same driver on the same recorded gradients (a closed loop and an
    open loop are different programs, so they are not compared with each other)."""
    my_adam, my_amsgrad = _readme_adam_and_amsgrad()
    grads = _recorded_grads(dtype)
    runs = {name: trajectory(tx, dtype, steps=RUNS, grads=grads)[0] for name, tx in [
        ("my_adam", my_adam), ("adam", gc.adam(0.03)),
        ("my_amsgrad", my_amsgrad), ("amsgrad", gc.amsgrad(0.03)),
        ("split_adam", _split_adam())]}
    chex.assert_trees_all_equal(runs["my_adam"], runs["adam"])
    chex.assert_trees_all_equal(runs["split_adam"], runs["adam"])
    chex.assert_trees_all_equal(runs["my_amsgrad"], runs["amsgrad"])
    # AMSGrad differs from Adam on this problem, so the two comparisons are not the same one.
    assert max_relative_error(runs["amsgrad"], runs["adam"]) > 1e-3
