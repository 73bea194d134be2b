"""Sign and memory-light optimizers and the Adam family (issue 11, part): what the registry's
parity and contract rows do not show.

- each alias takes Optax's arguments (names, positions, defaults);
- each keeps exactly as many bytes of per-param statistics as its Optax twin: shared
  statistics are stored once (AdaBelief's ``m``, Adan's previous gradient);
- Rprop: the default follows the papers and ``torch.optim.Rprop`` (a NumPy transcription of
  torch's loop, 200 float64 steps on the shared problem), ``stale_update=True`` is Optax 0.2.8's
  lagging step (hand-computed numbers; its 200-step parity is a registry row);
- Fromage: the learning rate set at run time moves both of its terms;
- Adan (a registry variant, see ``registry.ADAN``) under ``vmap``: equal to separate runs to
  within 1e-13 of each state leaf's largest entry;
- optimizers that share a statistic work side by side in parameter groups;
- every numeric hyperparameter may be traced (under jit, vmap and grad, unchecked) or a
  schedule (Rprop's initial step size aside: it is used once, by ``init``).
"""

import functools
import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
import test_transforms
import test_validation
from problems import gradient, initial_params, max_relative_error, trajectory
from registry import ADAN

NAMES = ["lion", "sign_sgd", "signum", "rprop", "fromage", "optimistic_gradient_descent",
         "adabelief", "adan", "adamax", "adamaxw", "yogi", "nadamw"]

# gradchain's own arguments after Optax's: keyword-only, with a default that keeps Optax's
# behaviour (or, for rprop, the papers' numbers; see its docstring).
EXTENSIONS = {"rprop": {"stale_update"}, "nadamw": {"nu_dtype", "multiplier"}}


@pytest.mark.parametrize("name", NAMES)
def test_signature_is_optax_s(name):
    ours = list(inspect.signature(getattr(gc, name)).parameters.values())
    theirs = list(inspect.signature(getattr(optax, name)).parameters.values())
    assert [(p.name, p.kind, p.default) for p in ours[:len(theirs)]] == [
        (p.name, p.kind, p.default) for p in theirs]
    extra = ours[len(theirs):]
    assert {p.name for p in extra} == EXTENSIONS.get(name, set())
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extra)


# float32 params with no 0-d leaf, so that the per-param statistics are exactly the state's
# arrays of rank >= 1. The rest are 0-d: step counts, and gradchain's hyperparameters (kept in
# the state, where Optax keeps them only under inject_hyperparams).
PARAMS = {"w": jnp.zeros((4, 5), jnp.float32), "b": jnp.zeros((3,), jnp.float32)}
PER_PARAM_BYTES = 4 * (20 + 3)


def statistic_bytes(state):
    """Bytes of the state's arrays of rank >= 1 (the per-param statistics)."""
    return gc.state_bytes([x for x in jax.tree.leaves(state) if np.ndim(x) >= 1])


@pytest.mark.parametrize("name, copies", [
    ("lion", 1), ("sign_sgd", 0), ("signum", 1), ("rprop", 2), ("fromage", 0),
    ("optimistic_gradient_descent", 1), ("adabelief", 2), ("adan", 4), ("adamax", 2),
    ("adamaxw", 2), ("yogi", 2), ("nadamw", 2)])
def test_statistics_take_the_bytes_optax_s_take(name, copies):
    ours = jax.eval_shape(getattr(gc, name)(1e-3).init, PARAMS)
    theirs = jax.eval_shape(getattr(optax, name)(1e-3).init, PARAMS)
    assert statistic_bytes(ours) == statistic_bytes(theirs) == copies * PER_PARAM_BYTES


def torch_rprop(learning_rate, etas, step_sizes, grads):
    """``torch.optim.Rprop``'s loop (torch 2.x, ``_single_tensor_rprop``) in NumPy, float64,
    from the shared problem's start, step ``t`` using ``grads[t]``; the params after each."""
    eta_minus, eta_plus = etas
    low, high = step_sizes
    params = {k: np.asarray(v) for k, v in initial_params(jnp.float64).items()}
    prev = {k: np.zeros_like(v) for k, v in params.items()}
    size = {k: np.full_like(v, learning_rate) for k, v in params.items()}
    trail = {k: [] for k in params}
    for t in range(len(grads["w"])):
        for k in params:
            g = np.asarray(grads[k][t])
            sign = np.sign(g * prev[k])
            factor = np.where(sign > 0, eta_plus, np.where(sign < 0, eta_minus, 1.0))
            size[k] = np.clip(size[k] * factor, low, high)
            g = np.where(sign < 0, 0.0, g)
            params[k] = params[k] - np.sign(g) * size[k]
            prev[k] = g
            trail[k].append(params[k])
    return {k: np.stack(v) for k, v in trail.items()}


@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=0.01),
    dict(learning_rate=0.01, eta_minus=0.3, eta_plus=1.5, min_step_size=2e-3,
         max_step_size=0.05)])
def test_rprop_follows_torch_s_algorithm(kwargs):
    """200 closed-loop float64 steps on the shared problem; the NumPy loop is fed the same
    gradients (each the gradient at the params both runs reached)."""
    full = dict(dict(eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0),
                **kwargs)
    actual, grads = trajectory(gc.rprop(**kwargs), jnp.float64, 200)
    expected = torch_rprop(full["learning_rate"], (full["eta_minus"], full["eta_plus"]),
                           (full["min_step_size"], full["max_step_size"]), grads)
    assert max_relative_error(actual, expected) <= 1e-14
    # steps are skipped after sign changes (an entry stands still for a step)
    assert np.any(np.diff(expected["w"], axis=0) == 0)


def test_rprop_steps_by_hand():
    """Δ_0 = 0.1, η = (0.5, 1.2): the steps on a gradient +, +, +, -, + (optax PR #1725's
    example); Optax 0.2.8 lags one step and never recovers after the flip."""
    params = jnp.zeros(1)
    grads = [1.0, 1.0, 1.0, -1.0, 1.0]

    def steps(tx):
        def step(state, g):
            update, state = tx.update(jnp.full(1, g), state, params)
            return state, -update[0]

        return jax.jit(lambda: jax.lax.scan(step, tx.init(params), jnp.asarray(grads))[1])()

    np.testing.assert_allclose(steps(gc.rprop(0.1)), [0.1, 0.12, 0.144, 0.0, 0.072],
                               rtol=1e-15)
    np.testing.assert_allclose(steps(gc.rprop(0.1, stale_update=True)),
                               [0.0, 0.1, 0.12, 0.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(steps(optax.rprop(0.1)), [0.0, 0.1, 0.12, 0.0, 0.0], rtol=1e-15)


def test_fromage_learning_rate_set_at_run_time_moves_both_terms():
    """Built with 0.01 and set to 0.003 in the state equals built with 0.003: the shrink
    ``1/√(1 + γ²)`` follows the rate it derives from."""
    start = initial_params(jnp.float64)

    @functools.partial(jax.jit, static_argnums=0)
    def run(tx, state):
        def step(carry, _):
            params, state = carry
            updates, state = tx.update(gradient(params), state, params)
            return (gc.apply_updates(params, updates), state), None

        return jax.lax.scan(step, (start, state), length=3)[0][0]

    tx, other = gc.fromage(0.01), gc.fromage(0.003)
    changed = run(tx, gc.set_hyperparams(tx, tx.init(start), learning_rate=0.003))
    built = run(other, other.init(start))
    unchanged = run(tx, tx.init(start))
    np.testing.assert_allclose(changed["w"], built["w"], rtol=1e-15)
    assert not np.allclose(changed["w"], unchanged["w"], rtol=1e-6)


def test_adan_under_vmap_equals_separate_runs():
    """As ``test_transforms``' vmap test, with each leaf compared at its own scale: Adan's
    average of gradient differences magnifies the last bit in which the batched and unbatched
    gradients of the problem differ."""
    rate = ADAN.learning_rate
    starts = [initial_params(jnp.float64), jax.tree.map(lambda x: -0.5 * x,
                                                        initial_params(jnp.float64))]
    batched = test_transforms.train_batch(
        ADAN, jnp.asarray([rate, 2 * rate]), jax.tree.map(lambda *xs: jnp.stack(xs), *starts),
        3)
    for i, (r, start) in enumerate(zip([rate, 2 * rate], starts)):
        alone = test_transforms.train(ADAN, jnp.asarray(r), start, 3)
        for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x, i=i: x[i], batched)),
                        jax.tree.leaves(alone)):
            scale = max(float(np.max(np.abs(b))), 1e-300)
            assert np.max(np.abs(np.asarray(a) - np.asarray(b))) <= 1e-13 * scale
    assert not np.allclose(batched[1][0]["w"][0], batched[1][0]["w"][1])


def test_optimizers_sharing_statistics_work_in_parameter_groups():
    """Each group shares its statistics within itself: two AdaBeliefs (the same shared name)
    and an Adan side by side equal Optax's partition of the same optimizers."""
    params = {"a": jnp.linspace(-1.0, 1.0, 3), "b": jnp.asarray([0.5, -2.0]),
              "c": jnp.asarray([3.0])}
    labels = {"a": "x", "b": "y", "c": "z"}

    def groups(library):
        return {"x": library.adabelief(0.1), "y": library.adabelief(0.01),
                "z": library.adan(0.05)}

    ours, theirs = gc.partition(groups(gc), labels), optax.partition(groups(optax), labels)

    @functools.partial(jax.jit, static_argnums=0)
    def two_steps(tx):
        state, out = tx.init(params), params
        for _ in range(2):
            updates, state = tx.update(jax.tree.map(jnp.sin, out), state, out)
            out = gc.apply_updates(out, updates)
        return out

    np.testing.assert_allclose(jnp.concatenate(jax.tree.leaves(two_steps(ours))),
                               jnp.concatenate(jax.tree.leaves(two_steps(theirs))), rtol=1e-14)


# Every numeric argument of each alias, so all of them can be given traced or scheduled.
ARGUMENTS = [
    (gc.lion, dict(learning_rate=0.1, b1=0.9, b2=0.99, weight_decay=1e-3)),
    (gc.sign_sgd, dict(learning_rate=0.1)),
    (gc.signum, dict(learning_rate=0.1, beta=0.9)),
    (gc.rprop, dict(learning_rate=0.1, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6,
                    max_step_size=50.0)),
    (gc.fromage, dict(learning_rate=0.1, min_norm=1e-6)),
    (gc.optimistic_gradient_descent, dict(learning_rate=0.1, alpha=1.0, beta=1.0)),
    (gc.adabelief, dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16)),
    (gc.adan, dict(learning_rate=0.1, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=1e-8,
                   weight_decay=1e-3)),
    (gc.adamax, dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8)),
    (gc.adamaxw, dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-3)),
    (gc.yogi, dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-3)),
    (gc.nadamw, dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8, eps_root=1e-9,
                     weight_decay=1e-3)),
]
IDS = [builder.__name__ for builder, _ in ARGUMENTS]


@pytest.mark.parametrize("builder, kwargs", ARGUMENTS, ids=IDS)
def test_traced_hyperparameters_pass_under_jit_grad_vmap(builder, kwargs):
    test_validation.test_traced_hyperparameters_pass_under_jit_grad_vmap(builder, kwargs)


@pytest.mark.parametrize("builder, kwargs", ARGUMENTS, ids=IDS)
def test_schedules_pass(builder, kwargs):
    """A schedule is not checked at construction, even one that leaves the range."""
    scheduled = {k: (lambda v: lambda count: v * (1.0 - 2.0 * count))(v)
                 for k, v in kwargs.items() if (builder, k) != (gc.rprop, "learning_rate")}
    tx = builder(**{**kwargs, **scheduled})
    params = test_validation.PARAMS
    updates, _ = tx.update(params, tx.init(params), params)
    chex.assert_tree_all_finite(updates)
