"""Schedule-free and learning-rate-free optimizers beyond the registry rows.

The registry (``tests/registry.py``) runs them against Optax's ``optax.contrib`` twins and
through the contract tests, from settings where their first steps are not ~1e-6. Here:

- drop-in: ``prodigy``, ``dadapt_adamw`` and ``dog`` called with no arguments equal Optax's
  (float64 closed loop within 1e-10, float32 open loop within 1e-5, as ``test_optax_parity``;
  the other aliases' default rows are in the registry), and every alias takes Optax's arguments
  with Optax's defaults in Optax's positions;
- Mechanic from its defaults is chaotic on the test problem: one rounding per step (every
  gradient scaled by ``1 + 2^-52``) moves Optax's own 200-step float64 run by 1e-3. So
  gradchain is compared with Optax step for step on Optax's gradients (open loop, 1e-12,
  measured 8e-15), and closed loop within ten times that measured noise floor;
- the state holds no more bytes per parameter than Optax's;
- ``schedule_free_eval_params`` gives Optax's evaluation params, also from a state holding the
  schedule-free state deeper down; and the wrappers' and aliases' argument checks.
"""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
import problems
from problems import initial_params, max_relative_error, trajectory

STEPS = 200
ALIASES = ("schedule_free_sgd", "schedule_free_adamw", "prodigy", "dadapt_adamw", "dog", "dowg",
           "cocob")
DROP_IN = {
    "prodigy": lambda lib: lib.prodigy(),
    "dadapt_adamw": lambda lib: lib.dadapt_adamw(),
    "dog": lambda lib: lib.dog(),
}


@functools.lru_cache(maxsize=None)
def _runs(name):
    """Optax's and gradchain's runs of ``DROP_IN[name]``: float64 closed loop, float32 open
    loop on Optax's gradients; one compiled program."""
    build = DROP_IN[name]

    def run():
        ref64, _ = trajectory(build(optax.contrib), jnp.float64, STEPS)
        ours64, _ = trajectory(build(gc), jnp.float64, STEPS)
        ref32, grads32 = trajectory(build(optax.contrib), jnp.float32, STEPS)
        ours32, _ = trajectory(build(gc), jnp.float32, STEPS, grads=grads32)
        return (ours64, ref64), (ours32, ref32)

    return jax.jit(run)()


@pytest.mark.parametrize("name", list(DROP_IN))
def test_default_arguments_give_optax_numbers(name):
    (ours64, ref64), (ours32, ref32) = _runs(name)
    assert max_relative_error(ours64, ref64) <= 1e-10
    assert max_relative_error(ours32, ref32) <= 1e-5
    start = initial_params(jnp.float64)
    assert problems.loss({k: v[-1] for k, v in ours64.items()}) < 0.5 * problems.loss(start)


def _mechanic(library, gradient_scale=None):
    if library is gc:
        return gc.mechanize(gc.adam(0.03))
    mechanic = optax.contrib.mechanize(optax.adam(0.03))
    return mechanic if gradient_scale is None else optax.chain(optax.scale(gradient_scale),
                                                               mechanic)


@functools.lru_cache(maxsize=None)
def _mechanic_runs():
    def run():
        reference, grads = trajectory(_mechanic(optax), jnp.float64, STEPS)
        open_loop, _ = trajectory(_mechanic(gc), jnp.float64, STEPS, grads=grads)
        closed_loop, _ = trajectory(_mechanic(gc), jnp.float64, STEPS)
        perturbed, _ = trajectory(_mechanic(optax, 1 + 2.0 ** -52), jnp.float64, STEPS)
        return reference, open_loop, closed_loop, perturbed

    return jax.jit(run)()


def test_mechanize_of_adam_matches_optax_within_its_noise_floor():
    """The noise floor: Optax against itself with every gradient scaled by ``1 + 2^-52`` (one
    rounding per step), 1.1e-3 after 200 steps; gradchain's closed loop is 1.3e-3 from Optax."""
    reference, open_loop, closed_loop, perturbed = _mechanic_runs()
    assert max_relative_error(open_loop, reference) <= 1e-12
    floor = max_relative_error(perturbed, reference)
    assert floor > 1e-6  # chaotic: one rounding per step grows more than 1e9-fold
    assert max_relative_error(closed_loop, reference) <= 10 * floor


def _positional_index(parameters, name):
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [n for n, p in parameters.items() if p.kind in kinds]
    return positional.index(name) if name in positional else None


@pytest.mark.parametrize("name", ALIASES + ("schedule_free", "mechanize"))
def test_signature_is_optax(name):
    ours = inspect.signature(getattr(gc, name)).parameters
    theirs = inspect.signature(getattr(optax.contrib, name)).parameters
    assert set(theirs) <= set(ours), set(theirs) - set(ours)
    for arg, parameter in theirs.items():
        assert _positional_index(ours, arg) == _positional_index(theirs, arg), arg
        assert ours[arg].default == parameter.default, arg


def _params(n):
    return {"w": jnp.ones((n, 4), jnp.float32), "b": jnp.ones(n, jnp.float32)}


STATE_CASES = {
    "schedule_free_adamw": (lambda: gc.schedule_free_adamw(),
                            lambda: optax.contrib.schedule_free_adamw()),
    "schedule_free_sgd": (lambda: gc.schedule_free_sgd(),
                          lambda: optax.contrib.schedule_free_sgd()),
    "prodigy": (gc.prodigy, optax.contrib.prodigy),
    "dadapt_adamw": (gc.dadapt_adamw, optax.contrib.dadapt_adamw),
    "dog": (gc.dog, optax.contrib.dog),
    "dowg": (gc.dowg, optax.contrib.dowg),
    "cocob": (gc.cocob, optax.contrib.cocob),
    "mechanize": (lambda: gc.mechanize(gc.adam(1e-3)),
                  lambda: optax.contrib.mechanize(optax.adam(1e-3))),
}


@pytest.mark.parametrize("name", list(STATE_CASES))
def test_state_holds_no_more_per_parameter_than_optax(name):
    """Bytes per parameter (the growth from 100 to 200 rows of float32 params) are Optax's;
    what is left are scalars: hyperparameters and their records (at most 200 bytes)."""
    ours, theirs = (make() for make in STATE_CASES[name])

    def size(tx, n):
        return gc.state_bytes(jax.eval_shape(tx.init, _params(n)))

    assert size(ours, 200) - size(ours, 100) == size(theirs, 200) - size(theirs, 100)
    assert size(ours, 100) - size(theirs, 100) <= 200


def _run_schedule_free(library, steps=20):
    tx = (library.contrib.schedule_free_adamw(0.05, weight_decay=0.1) if library is optax
          else gc.schedule_free_adamw(0.05, weight_decay=0.1))
    params = initial_params(jnp.float64)
    state = tx.init(params)
    for _ in range(steps):
        updates, state = tx.update(problems.gradient(params), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def test_eval_params_are_optax():
    params, state = _run_schedule_free(gc)
    ref_params, ref_state = _run_schedule_free(optax)
    ours = gc.schedule_free_eval_params(state, params)
    theirs = optax.contrib.schedule_free_eval_params(ref_state, ref_params)
    assert max_relative_error({k: v[None] for k, v in ours.items()},
                              {k: v[None] for k, v in theirs.items()}) <= 1e-12
    assert not np.allclose(ours["w"], params["w"])


def test_eval_params_find_the_state_inside_a_chain_and_refuse_others():
    params = initial_params(jnp.float64)
    tx = gc.chain(gc.clip_by_global_norm(1.0), gc.schedule_free_sgd(0.1, b1=0.5))
    state = tx.init(params)
    updates, state = tx.update(problems.gradient(params), state, params)
    moved = gc.apply_updates(params, updates)
    z = state[1].z
    expected = jax.tree.map(lambda y, zi: (y - 0.5 * zi) / 0.5, moved, z)
    for key in params:
        np.testing.assert_allclose(gc.schedule_free_eval_params(state, moved)[key],
                                   expected[key], rtol=1e-15)
    with pytest.raises(ValueError, match="^schedule_free_eval_params: the state holds no"):
        gc.schedule_free_eval_params(gc.adam(0.1).init(params), params)


def test_schedule_free_keeps_z_in_at_least_float32():
    """bfloat16 params: ``z`` in float32 by default (Optax: bfloat16, where its rounding,
    ~0.4% of the params, swamps the updates), bfloat16 when asked."""
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    assert gc.schedule_free_sgd().init(params).z["w"].dtype == jnp.float32
    assert gc.schedule_free_sgd(state_dtype=jnp.bfloat16).init(params).z["w"].dtype == \
        jnp.bfloat16


@pytest.mark.parametrize("build, error, message", [
    (lambda: gc.schedule_free(gc.sgd, 0.1), TypeError, "schedule_free: base_optimizer is"),
    (lambda: gc.schedule_free(gc.sgd(0.1), 0.1, b1=0.0), ValueError,
     "schedule_free: b1=0.0 is out of range; expected b1 in (0, 1]"),
    (lambda: gc.schedule_free_adamw(warmup_steps=0), ValueError,
     "schedule_free_adamw: warmup_steps=0 is out of range"),
    (lambda: gc.mechanize(gc.sgd(0.1), num_betas=0), ValueError,
     "mechanize: num_betas=0 is out of range"),
    (lambda: gc.mechanize(gc.sgd(0.1), s_init=0.0), ValueError,
     "mechanize: s_init=0.0 is out of range; expected s_init in (0, inf)"),
    (lambda: gc.mechanize(None), TypeError, "mechanize: base_optimizer is None"),
    (lambda: gc.prodigy(betas=(1.0, 0.999)), ValueError,
     "prodigy: betas[0]=1.0 is out of range; expected betas[0] in [0, 1)"),
    (lambda: gc.dadapt_adamw(betas=0.9), TypeError, "dadapt_adamw: betas=0.9 is not a pair"),
    (lambda: gc.dog(init_step=("steps", 1e-6)), ValueError,
     "dog: init_step[0]='steps' is not one of"),
    (lambda: gc.dog(init_step=("distance", 0.0)), ValueError,
     "dog: init_step[1]=0.0 is out of range"),
    (lambda: gc.dowg(init_estim_sq_dist=-1.0), ValueError,
     "dowg: init_estim_sq_dist=-1.0 is out of range"),
    (lambda: gc.cocob(alpha=0.0), ValueError, "cocob: alpha=0.0 is out of range"),
])
def test_arguments_are_checked_naming_the_function_called(build, error, message):
    with pytest.raises(error) as raised:
        build()
    assert str(raised.value).startswith(message), str(raised.value)


def test_set_hyperparams_reaches_prodigy_betas_and_beta3_follows_beta2():
    """``betas`` is stored as ``beta1``/``beta2``; without ``beta3`` it is ``√beta2`` at every
    update, so setting ``beta2`` moves it too (the run equals one built with the new betas)."""
    params = initial_params(jnp.float64)
    grads = problems.gradient(params)
    tx = gc.prodigy(estim_lr0=1e-3)
    state = gc.set_hyperparams(tx, tx.init(params), {"beta2": 0.99})
    changed, _ = tx.update(grads, state, params)
    expected, _ = gc.prodigy(betas=(0.9, 0.99), estim_lr0=1e-3).update(
        grads, gc.prodigy(betas=(0.9, 0.99), estim_lr0=1e-3).init(params), params)
    for key in params:
        np.testing.assert_array_equal(changed[key], expected[key])
    with pytest.raises(ValueError, match=r"beta2=1\.5 is out of range"):
        gc.set_hyperparams(tx, state, {"beta2": 1.5})


@pytest.mark.parametrize("build", [gc.cocob, gc.prodigy, gc.dadapt_adamw,
                                   lambda: gc.mechanize(gc.sgd(0.1))])
def test_complex_updates_are_refused(build):
    params = {"w": jnp.ones(2, jnp.complex64)}
    tx = build()
    with pytest.raises(TypeError, match="does not support complex leaves"):
        tx.update(params, tx.init(params), params)


def test_eval_params_from_an_nnx_optimizer():
    """``nnx.Optimizer`` keeps Variables in its state and params: the eval params are arrays
    in the params' tree, ``(y - (1 - β1) z) / β1``."""
    from flax import nnx

    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, gc.schedule_free_sgd(0.1, b1=0.5), wrt=nnx.Param)
    for _ in range(2):
        optimizer.update(model, nnx.grad(lambda m: jnp.sum(m(jnp.ones((4, 3))) ** 2))(model))
    params = nnx.state(model, nnx.Param)
    evaluated = gc.schedule_free_eval_params(optimizer.opt_state, params)
    z = gc.find_state(optimizer.opt_state, "z")
    for key in ("kernel", "bias"):
        np.testing.assert_allclose(evaluated[key], (params[key][...] - 0.5 * z[key]) / 0.5,
                                   rtol=1e-6)
        assert not np.allclose(evaluated[key], params[key][...])
