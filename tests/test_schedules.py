"""Schedules against PyTorch's schedulers, the closed forms of the notes, and Optax.

- Every PyTorch-named schedule equals the sequence recorded from ``torch.optim.lr_scheduler``
  (``tests/golden/make_torch_schedules.py``: the lr, and the momentum of the cycles, before
  each ``optimizer.step()``, 2,000+ steps per configuration, edges included) and equals the
  closed-form formula of REFERENCES.md written out below in NumPy, independently of the
  implementation. The only differences are the documented ones after the end:
  ``cosine_annealing_lr`` holds ``eta_min`` after ``T_max`` (torch climbs back), and
  ``one_cycle_lr`` holds its minimum at ``total_steps`` (torch extrapolates one more value).
- Optax-named schedules equal Optax's.
- Schedules of any hyperparameter go through the core mechanism: SGD with a cycled momentum
  and Adam with a cycled ``b1`` follow torch's trajectories with ``OneCycleLR``/``CyclicLR``.
- Properties (hypothesis), ``jit``/``vmap``/``grad``, and construction errors.
"""

import json
import math
import pathlib
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradchain as gc
from gradchain import schedules as S

GOLDEN = pathlib.Path(__file__).parent / "golden"
TORCH = np.load(GOLDEN / "torch_schedules.npz")
CONFIGS = json.loads(str(TORCH["configs"]))
CYCLED = np.load(GOLDEN / "torch_cycled_momentum.npz")

# Tolerances, relative to the schedule's scale (its largest value): the closed forms here and
# in gradchain agree to rounding (measured worst 1.7e-15); torch computes most schedules
# recursively and drifts by a few ulps over thousands of steps (measured worst 7.6e-15, the
# LinearLR warm-up).
CLOSED_FORM_TOL = 1e-14
TORCH_TOL = 5e-14


# ----- the closed forms of REFERENCES.md / the notes, in NumPy -------------------------------

def step_formula(t, lr, step_size, gamma=0.1):
    return lr * gamma ** (t // step_size)


def multi_step_formula(t, lr, milestones, gamma=0.1):
    return lr * gamma ** np.array([sum(m <= x for m in milestones) for x in t])


def exponential_formula(t, lr, gamma):
    return lr * gamma ** t


def constant_formula(t, lr, factor=1 / 3, total_iters=5):
    return lr * np.where(t < total_iters, factor, 1.0)


def polynomial_formula(t, lr, total_iters=5, power=1.0):
    return lr * (1 - np.minimum(t, total_iters) / total_iters) ** power


def linear_formula(t, lr, start_factor=1 / 3, end_factor=1.0, total_iters=5):
    return lr * (start_factor
                 + (end_factor - start_factor) * np.minimum(t, total_iters) / total_iters)


def cosine_formula(t, lr, T_max, eta_min=0.0):
    """The notes' formula, held at eta_min after T_max."""
    return eta_min + 0.5 * (lr - eta_min) * (1 + np.cos(np.pi * np.minimum(t, T_max) / T_max))


def warm_restarts_formula(t, lr, T_0, T_mult=1, eta_min=0.0):
    out, start, length = [], 0, T_0
    for x in t:
        while x >= start + length:
            start, length = start + length, length * T_mult
        out.append(eta_min + 0.5 * (lr - eta_min) * (1 + math.cos(math.pi * (x - start) / length)))
    return np.array(out)


def cyclic_formula(t, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                   mode="triangular", gamma=1.0, base_momentum=0.8, max_momentum=0.9):
    """Smith's formula (symmetric cycles) or the same triangle with two slopes."""
    down = step_size_up if step_size_down is None else step_size_down
    if down == step_size_up:
        s = step_size_up
        cycle = np.floor(1 + t / (2 * s))
        height = np.maximum(0, 1 - np.abs(t / s - 2 * cycle + 1))
    else:
        cycle = t // (step_size_up + down) + 1
        pos = t % (step_size_up + down)
        height = np.where(pos <= step_size_up, pos / step_size_up, 1 - (pos - step_size_up) / down)
    scale = {"triangular": np.ones_like(height), "triangular2": 1 / 2.0 ** (cycle - 1),
             "exp_range": gamma ** t}[mode]
    return (base_lr + (max_lr - base_lr) * height * scale,
            max_momentum - (max_momentum - base_momentum) * height * scale)


def one_cycle_formula(t, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos",
                      div_factor=25.0, final_div_factor=1e4, three_phase=False,
                      base_momentum=0.85, max_momentum=0.95):
    initial = max_lr / div_factor
    low = initial / final_div_factor
    up_end = pct_start * total_steps - 1
    if three_phase:
        phases = [(0, up_end, initial, max_lr, max_momentum, base_momentum),
                  (up_end, 2 * up_end, max_lr, initial, base_momentum, max_momentum),
                  (2 * up_end, total_steps - 1, initial, low, max_momentum, max_momentum)]
    else:
        phases = [(0, up_end, initial, max_lr, max_momentum, base_momentum),
                  (up_end, total_steps - 1, max_lr, low, base_momentum, max_momentum)]

    def anneal(a, b, p):
        return b + (a - b) / 2 * (math.cos(math.pi * p) + 1) if anneal_strategy == "cos" \
            else a + (b - a) * p

    lrs, moms = [], []
    for x in np.minimum(t, total_steps - 1):
        begin, end, lr0, lr1, m0, m1 = next(ph for ph in phases if x <= ph[1])
        p = (x - begin) / (end - begin)
        lrs.append(anneal(lr0, lr1, p))
        moms.append(anneal(m0, m1, p))
    return np.array(lrs), np.array(moms)


# ----- torch's configurations, built with gradchain and with the formulas ---------------------

def split_momentum(kwargs):
    kwargs = dict(kwargs)
    momentum = {k: kwargs.pop(k) for k in ("base_momentum", "max_momentum") if k in kwargs}
    return kwargs, momentum


def build(cls, kwargs, lr):
    """``(lr schedule, momentum schedule or None)`` with gradchain, from torch's arguments."""
    simple = {"StepLR": S.step_lr, "MultiStepLR": S.multi_step_lr,
              "ExponentialLR": S.exponential_lr, "ConstantLR": S.constant_lr,
              "PolynomialLR": S.polynomial_lr, "LinearLR": S.linear_lr,
              "CosineAnnealingLR": S.cosine_annealing_lr,
              "CosineAnnealingWarmRestarts": S.cosine_annealing_warm_restarts}
    if cls in simple:
        return simple[cls](lr, **kwargs), None
    kwargs, momentum = split_momentum(kwargs)
    if cls == "CyclicLR":
        cycle = {k: v for k, v in kwargs.items() if k not in ("base_lr", "max_lr")}
        return S.cyclic_lr(**kwargs), S.cyclic_momentum(**momentum, **cycle)
    phases = {k: v for k, v in kwargs.items()
              if k not in ("max_lr", "div_factor", "final_div_factor")}
    return S.one_cycle_lr(**kwargs), S.one_cycle_momentum(**momentum, **phases)


def formula(cls, kwargs, lr, t):
    """``(lr, momentum or None)`` from the closed forms."""
    simple = {"StepLR": step_formula, "MultiStepLR": multi_step_formula,
              "ExponentialLR": exponential_formula, "ConstantLR": constant_formula,
              "PolynomialLR": polynomial_formula, "LinearLR": linear_formula,
              "CosineAnnealingLR": cosine_formula,
              "CosineAnnealingWarmRestarts": warm_restarts_formula}
    if cls in simple:
        return simple[cls](t, lr, **kwargs), None
    return (cyclic_formula if cls == "CyclicLR" else one_cycle_formula)(t, **kwargs)


def values(schedule, steps):
    """The schedule over ``range(steps)``: one compiled, vmapped call."""
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(steps)))


def torch_range(cls, kwargs, steps):
    """Steps where torch is compared; past them the documented differences begin."""
    if cls == "CosineAnnealingLR":
        return min(steps, kwargs["T_max"] + 1)
    if cls == "OneCycleLR":
        return kwargs["total_steps"]
    return steps


def scaled_error(actual, expected, scale):
    return float(np.max(np.abs(np.asarray(actual) - np.asarray(expected)))) / scale


@pytest.mark.parametrize("name", list(CONFIGS))
def test_schedule_equals_torch_and_the_closed_form(name):
    cls, kwargs, lr, steps = CONFIGS[name]
    schedule, momentum = build(cls, kwargs, lr)
    t = np.arange(steps)
    ours = values(schedule, steps)
    expected_lr, expected_momentum = formula(cls, kwargs, lr, t)
    scale = max(abs(lr), kwargs.get("max_lr", 0.0))
    assert scaled_error(ours, expected_lr, scale) <= CLOSED_FORM_TOL
    n = torch_range(cls, kwargs, steps)
    assert n >= min(steps - 1, 300)
    assert scaled_error(ours[:n], TORCH[f"{name}/lr"][:n], scale) <= TORCH_TOL
    if momentum is not None:
        ours_m = values(momentum, steps)
        assert scaled_error(ours_m, expected_momentum, 1.0) <= CLOSED_FORM_TOL
        assert scaled_error(ours_m[:n], TORCH[f"{name}/momentum"][:n], 1.0) <= TORCH_TOL


def test_golden_configurations_cover_the_edges():
    """At least 2,000 steps for every long configuration, and every family present."""
    long = [c for c in CONFIGS.values() if c[3] >= 2000]
    assert {c[0] for c in long} == {"StepLR", "MultiStepLR", "ExponentialLR", "ConstantLR",
                                    "PolynomialLR", "LinearLR", "CosineAnnealingLR",
                                    "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR"}
    assert len(long) >= 20


@pytest.mark.parametrize("name, expected", [
    ("step_lr_reference", [1, 1, 1, .5, .5, .5, .25]),
    ("multi_step_lr_reference", [1, 1, .1, .1, .1, .01]),
    ("cosine_annealing_lr_reference", [1, .854, .5, .146, 0]),
    ("warm_restarts_reference", [1, .5, 1, .854, .5, .146, 1, .962]),
    ("cyclic_reference", [.1, .55, 1, .55, .1, .325, .55, .325, .1, .2125]),
    ("one_cycle_reference", [.04, .52, 1, .950, .812, .611, .389, .188, .050, 4e-6]),
])
def test_the_sequences_quoted_in_references(name, expected):
    cls, kwargs, lr, steps = CONFIGS[name]
    schedule, _ = build(cls, kwargs, lr)
    np.testing.assert_allclose(values(schedule, len(expected)), expected, rtol=0, atol=6e-4)
    np.testing.assert_allclose(TORCH[f"{name}/lr"][:len(expected)], expected, atol=6e-4)


def test_cosine_annealing_after_t_max_holds_eta_min_where_torch_oscillates():
    cls, kwargs, lr, steps = CONFIGS["cosine_annealing_lr_short"]
    T = kwargs["T_max"]
    ours, theirs = values(build(cls, kwargs, lr)[0], steps), TORCH["cosine_annealing_lr_short/lr"]
    np.testing.assert_allclose(ours[T:], kwargs["eta_min"], atol=1e-15)
    # torch keeps following the cosine: back at the initial value at 2·T_max, period 2·T_max
    assert theirs[2 * T] == pytest.approx(lr, rel=1e-9)
    assert theirs[3 * T] == pytest.approx(kwargs["eta_min"], abs=1e-9)
    t = np.arange(T, steps)
    unclipped = kwargs["eta_min"] + 0.5 * (lr - kwargs["eta_min"]) * (1 + np.cos(np.pi * t / T))
    np.testing.assert_allclose(theirs[T:], unclipped, atol=1e-9)


def test_one_cycle_after_the_last_step_holds_the_minimum_where_torch_extrapolates():
    for name in ("one_cycle", "one_cycle_linear"):
        cls, kwargs, lr, steps = CONFIGS[name]
        total = kwargs["total_steps"]
        schedule, _ = build(cls, kwargs, lr)
        ours = np.asarray(schedule(jnp.arange(total - 1, total + 100)))
        assert np.all(ours == ours[0])
        assert TORCH[f"{name}/lr"][total] != pytest.approx(ours[0], rel=1e-3)
    # extrapolated past its end, torch's cosine turns back up and its line goes on down
    assert TORCH["one_cycle/lr"][-1] > TORCH["one_cycle/lr"][-2]
    assert TORCH["one_cycle_linear/lr"][-1] < TORCH["one_cycle_linear/lr"][-2]


# ----- Optax's names -------------------------------------------------------------------------

OPTAX_PAIRS = [
    ("constant_schedule", S.constant_schedule(0.3), optax.constant_schedule(0.3)),
    ("linear_schedule", S.linear_schedule(0.1, 1.0, 500, 200),
     optax.linear_schedule(0.1, 1.0, 500, 200)),
    ("linear_warmup_from_zero", S.linear_schedule(0.0, 2.0, 1000),
     optax.linear_schedule(0.0, 2.0, 1000)),
    ("polynomial_schedule", S.polynomial_schedule(1.0, 0.01, 2.5, 1500, 100),
     optax.polynomial_schedule(1.0, 0.01, 2.5, 1500, 100)),
    ("cosine_decay_schedule", S.cosine_decay_schedule(0.5, 1800, 0.1, 1.5),
     optax.cosine_decay_schedule(0.5, 1800, 0.1, 1.5)),
    ("warmup_cosine_decay_schedule", S.warmup_cosine_decay_schedule(0.0, 1.0, 300, 2000, 1e-3),
     optax.warmup_cosine_decay_schedule(0.0, 1.0, 300, 2000, 1e-3)),
    ("warmup_cosine_decay_no_warmup", S.warmup_cosine_decay_schedule(0.2, 1.0, 0, 2000),
     optax.warmup_cosine_decay_schedule(0.2, 1.0, 0, 2000)),
    ("warmup_constant_schedule", S.warmup_constant_schedule(0.01, 0.5, 700),
     optax.warmup_constant_schedule(0.01, 0.5, 700)),
    ("join_schedules", S.join_schedules([S.constant_schedule(1.0), S.exponential_lr(0.5, 0.999),
                                         S.cosine_annealing_lr(0.2, 400)], [100, 900]),
     optax.join_schedules([optax.constant_schedule(1.0),
                           optax.exponential_decay(0.5, 1, 0.999),
                           optax.cosine_decay_schedule(0.2, 400)], [100, 900])),
]


@pytest.mark.parametrize("name, ours, theirs", OPTAX_PAIRS, ids=[p[0] for p in OPTAX_PAIRS])
def test_optax_named_schedules_equal_optax(name, ours, theirs):
    t = jnp.arange(2400)
    expected = np.broadcast_to(np.asarray(jax.vmap(theirs)(t), np.float64), t.shape)
    np.testing.assert_allclose(values(ours, 2400), expected, rtol=1e-13, atol=1e-15)


# ----- batch size -----------------------------------------------------------------------------

def test_batch_size_rules():
    # Goyal et al.: lr 0.1 for 256 images -> 3.2 for 8192; Hoffer et al.: sqrt(32) x 0.1
    assert S.linear_scaling_rule(0.1, 256, 8192) == pytest.approx(3.2, rel=1e-15)
    assert S.sqrt_scaling_rule(0.1, 256, 8192) == pytest.approx(0.1 * math.sqrt(32), rel=1e-15)
    assert S.scale_learning_rate(0.4, 1024, 256) == pytest.approx(0.1, rel=1e-15)
    assert S.scale_learning_rate(0.4, 1024, 256, rule="sqrt") == pytest.approx(0.2, rel=1e-15)


def test_batch_size_warmup_is_goyal_gradual_warmup():
    steps_per_epoch = 40
    warmup = 5 * steps_per_epoch
    schedule = S.batch_size_warmup(0.1, 256, 2048, warmup)
    t = np.arange(3 * warmup)
    expected = np.where(t < warmup, 0.1 + (0.8 - 0.1) * t / warmup, 0.8)
    np.testing.assert_allclose(values(schedule, t.size), expected, rtol=1e-14)
    then = S.batch_size_warmup(0.1, 256, 1024, warmup, rule="sqrt",
                               then=lambda lr: S.step_lr(lr, 30 * steps_per_epoch, 0.1))
    got = values(then, warmup + 31 * steps_per_epoch)
    np.testing.assert_allclose(got[[0, warmup // 2, warmup, warmup + 30 * steps_per_epoch]],
                               [0.1, 0.15, 0.2, 0.02], rtol=1e-14)


# ----- scheduled hyperparameters other than the learning rate ---------------------------------

QUADRATIC = json.loads(str(CYCLED["quadratic"]))
TRAJECTORIES = json.loads(str(CYCLED["trajectories"]))


def quadratic_loss(x):
    a, c = jnp.asarray(QUADRATIC["a"]), jnp.asarray(QUADRATIC["c"])
    return 0.5 * jnp.sum(a * (x - c) ** 2) + 0.05 * jnp.sum(x ** 4)


def run_quadratic(tx, steps):
    def step(carry, _):
        x, s = carry
        u, s = tx.update(jax.grad(quadratic_loss)(x), s, x)
        x = optax.apply_updates(x, u)
        return (x, s), x

    x0 = jnp.zeros(len(QUADRATIC["a"]), jnp.float64)
    return np.asarray(jax.jit(lambda s: jax.lax.scan(step, (x0, s), length=steps)[1])(
        tx.init(x0)))


def cycled_optimizer(name):
    opt, opt_kwargs, sched, sched_kwargs = TRAJECTORIES[name]
    lr, momentum = build(sched, sched_kwargs, opt_kwargs["lr"])
    if opt == "SGD":
        return gc.sgd(lr, momentum=momentum)
    return gc.adam(lr, b1=momentum, eps=1e-8)


@pytest.mark.parametrize("name", list(TRAJECTORIES))
def test_cycled_momentum_and_b1_follow_torch(name):
    """One primitive's momentum (SGD) or Adam's tied ``b1`` (EMA and bias correction) given a
    schedule: the trajectory equals torch's with the scheduler writing momentum / betas[0]."""
    expected = CYCLED[name]
    got = run_quadratic(cycled_optimizer(name), len(expected))
    assert np.max(np.abs(got - expected)) / np.max(np.abs(expected)) < 1e-12


def test_a_growing_b2_equals_optax_inject_hyperparams():
    """Adam's ``b2`` (tied in its EMA and bias correction) growing from 0.9 to 0.999, and a
    decaying weight decay: the same numbers as Optax's ``inject_hyperparams``, which evaluates
    the schedules at the same step count."""
    b2 = S.linear_schedule(0.9, 0.999, 150)
    decay = S.exponential_lr(0.1, 0.98)
    ours = gc.adamw(0.05, b2=b2, weight_decay=decay)
    theirs = optax.inject_hyperparams(optax.adamw)(learning_rate=0.05, b2=b2,
                                                   weight_decay=decay)
    expected = run_quadratic(theirs, 200)
    assert np.max(np.abs(run_quadratic(ours, 200) - expected)) < 1e-12 * np.max(np.abs(expected))


def test_scheduled_values_are_logged_in_the_state():
    lr = S.one_cycle_lr(0.1, 50)
    momentum = S.one_cycle_momentum(50)
    tx = gc.sgd(lr, momentum=momentum)
    x = jnp.zeros(5)
    state = tx.init(x)
    step = jax.jit(lambda s: tx.update(jnp.ones(5), s, x)[1])
    for t in range(7):
        state = step(state)
        logged = gc.get_hyperparams(state)
        assert logged["2/learning_rate"] == pytest.approx(float(lr(t)), rel=1e-15)
        assert logged["1/momentum"] == pytest.approx(float(momentum(t)), rel=1e-15)


# ----- properties ------------------------------------------------------------------------------
# Each example is evaluated on the same 4,096 steps: with fixed shapes, the operations compiled
# for the first example serve all the others.

WINDOW = jnp.arange(4096)


@settings(max_examples=20, deadline=None)
@given(base=st.floats(1e-4, 1.0), ratio=st.floats(1.0, 100.0), up=st.integers(1, 50),
       down=st.integers(1, 50), mode=st.sampled_from(["triangular", "triangular2"]))
def test_cyclic_stays_between_its_bounds_and_returns_to_base(base, ratio, up, down, mode):
    v = np.asarray(S.cyclic_lr(base, base * ratio, up, down, mode=mode)(WINDOW))
    assert np.all(v >= base * (1 - 1e-12)) and np.all(v <= base * ratio * (1 + 1e-12))
    np.testing.assert_allclose(v[::up + down], base, rtol=1e-12)
    assert v[up] == pytest.approx(base * ratio, rel=1e-12)


@settings(max_examples=20, deadline=None)
@given(t0=st.integers(2, 40), mult=st.integers(1, 4), eta=st.floats(0.0, 0.5))
def test_warm_restarts_restart_at_the_initial_value(t0, mult, eta):
    v = np.asarray(S.cosine_annealing_warm_restarts(1.0, t0, mult, eta)(WINDOW))
    restarts = [0]
    while restarts[-1] + t0 * mult ** (len(restarts) - 1) < WINDOW.size:
        restarts.append(restarts[-1] + t0 * mult ** (len(restarts) - 1))
    np.testing.assert_allclose(v[restarts], 1.0, rtol=1e-14)
    assert np.all(v[np.asarray(restarts[1:]) - 1] < 1.0 - 1e-12)
    assert np.all(v >= eta - 1e-14)


@settings(max_examples=20, deadline=None)
@given(total=st.integers(50, 4000), pct=st.floats(0.05, 0.45), three=st.booleans(),
       strategy=st.sampled_from(["cos", "linear"]))
def test_one_cycle_peaks_at_max_and_ends_at_the_minimum(total, pct, three, strategy):
    v = np.asarray(S.one_cycle_lr(2.0, total, pct, strategy, 20.0, 50.0, three)(WINDOW))
    assert v[0] == pytest.approx(0.1, rel=1e-12)
    assert np.max(v) <= 2.0 * (1 + 1e-12)
    assert v[total - 1] == pytest.approx(0.1 / 50.0, rel=1e-9)
    assert np.all(v[total - 1:] == v[total - 1])


@settings(max_examples=20, deadline=None)
@given(warmup=st.integers(1, 2000), init=st.floats(0.0, 1.0), gamma=st.floats(0.9, 1.0))
def test_linear_warmup_joins_any_schedule_continuously(warmup, init, gamma):
    after = S.exponential_lr(2.0, gamma)
    v = np.asarray(S.linear_warmup(after, warmup, init)(WINDOW))
    assert v[0] == pytest.approx(init, abs=1e-15)
    assert v[warmup] == pytest.approx(2.0, rel=1e-15)
    np.testing.assert_allclose(v[warmup:], np.asarray(after(WINDOW))[:WINDOW.size - warmup],
                               rtol=1e-13)
    assert np.all(np.diff(v[:warmup + 1]) >= -1e-15)


def test_schedules_work_on_traced_steps_and_values():
    """Every configuration already ran under ``jit(vmap)`` above; here: a scalar traced step,
    any step shape, and traced value arguments (``grad``, ``vmap``)."""
    for name in ("step_lr", "warm_restarts", "cyclic_exp_range", "one_cycle_three_phase"):
        schedule = build(*CONFIGS[name][:2], CONFIGS[name][2])[0]
        scalar = jax.jit(schedule)(jnp.asarray(7, jnp.int32))
        assert scalar.shape == () and scalar.dtype == jnp.float64, name
        assert schedule(jnp.arange(6).reshape(2, 3)).shape == (2, 3), name
    # d/d(init) of γ0·γ^⌊t/s⌋ is γ^⌊t/s⌋
    assert jax.grad(lambda lr: S.step_lr(lr, 3, 0.5)(7))(1.0) == pytest.approx(0.25)
    batch = jax.vmap(lambda lr: S.cosine_annealing_lr(lr, 10)(5))(jnp.array([1.0, 2.0]))
    chex.assert_trees_all_close(batch, jnp.array([0.5, 1.0]), atol=1e-15)


def test_schedule_names_show_in_the_optimizer_description():
    tx = gc.sgd(S.cosine_annealing_lr(0.1, 100), momentum=S.cyclic_momentum())
    text = repr(tx)
    assert "<schedule cosine_annealing_lr>" in text and "<schedule cyclic_momentum>" in text


# ----- construction errors ----------------------------------------------------------------------

@pytest.mark.parametrize("build_it, message", [
    (lambda: S.step_lr(0.1, 0),
     "step_lr: step_size=0 is out of range; expected step_size in [1, inf)"),
    (lambda: S.step_lr(0.1, 2.5), "step_lr: step_size=2.5 is not an integer"),
    (lambda: S.step_lr(0.1, 10, gamma=-0.5), "step_lr: gamma=-0.5 is out of range"),
    (lambda: S.multi_step_lr(0.1, [10, -1]), "multi_step_lr: milestones[1]=-1 is out of range"),
    (lambda: S.linear_lr(0.1, start_factor=0.0), "linear_lr: start_factor=0.0 is out of range; "
                                                  "expected start_factor in (0, 1]"),
    (lambda: S.constant_lr(0.1, factor=2.0), "constant_lr: factor=2.0 is out of range"),
    (lambda: S.polynomial_lr(0.1, total_iters=0), "polynomial_lr: total_iters=0 is out of range"),
    (lambda: S.cosine_annealing_lr(0.1, 0), "cosine_annealing_lr: T_max=0 is out of range"),
    (lambda: S.cosine_annealing_warm_restarts(0.1, 10, 0),
     "cosine_annealing_warm_restarts: T_mult=0 is out of range"),
    (lambda: S.cosine_annealing_warm_restarts(0.1, 10, 1.5),
     "cosine_annealing_warm_restarts: T_mult=1.5 is not an integer"),
    (lambda: S.cyclic_lr(0.1, 1.0, mode="sine"), "cyclic_lr: mode='sine' is not one of "
                                                   "'triangular', 'triangular2', 'exp_range'"),
    (lambda: S.cyclic_lr(0.1, 1.0, step_size_down=0), "cyclic_lr: step_size_down=0 is out"),
    (lambda: S.one_cycle_lr(0.1), "one_cycle_lr: give total_steps, or epochs and steps_per_epoch"),
    (lambda: S.one_cycle_lr(0.1, 100, anneal_strategy="exp"),
     "one_cycle_lr: anneal_strategy='exp' is not one of 'cos', 'linear'"),
    (lambda: S.one_cycle_lr(0.1, 100, pct_start=1.5),
     "one_cycle_lr: pct_start=1.5 is out of range"),
    (lambda: S.one_cycle_lr(0.1, 3, pct_start=0.3), "one_cycle_lr: pct_start=0.3 with "
                                                     "total_steps=3 leaves a phase without steps"),
    (lambda: S.one_cycle_momentum(100, pct_start=0.6, three_phase=True),
     "one_cycle_momentum: pct_start=0.6 with total_steps=100 leaves a phase without steps"),
    (lambda: S.join_schedules([S.constant_schedule(1.0)] * 2, []),
     "join_schedules: 2 schedules need 1 boundaries, got 0"),
    (lambda: S.join_schedules([S.constant_schedule(1.0)] * 3, [10, 5]),
     "join_schedules: boundaries=[10, 5] must be non-decreasing"),
    (lambda: S.scale_learning_rate(0.1, 256, 512, rule="cubic"),
     "scale_learning_rate: rule='cubic' is not one of 'linear', 'sqrt'"),
    (lambda: S.linear_scaling_rule(0.1, 0, 512), "linear_scaling_rule: base_batch_size=0"),
    (lambda: S.warmup_cosine_decay_schedule(0.0, 1.0, 100, 100),
     "warmup_cosine_decay_schedule: decay_steps=100 is out of range; expected decay_steps in "
     "[101, inf)"),
])
def test_bad_arguments_raise_naming_function_argument_and_value(build_it, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build_it()


def test_non_schedule_arguments_raise_type_error():
    with pytest.raises(TypeError, match=r"linear_warmup: schedule=0\.1 is not a schedule"):
        S.linear_warmup(0.1, 10)
    with pytest.raises(TypeError, match=r"join_schedules: schedules\[1\]=2 is not a schedule"):
        S.join_schedules([S.constant_schedule(1.0), 2], [5])
    with pytest.raises(TypeError, match=r"batch_size_warmup: then\(0\.2\) returned 3"):
        S.batch_size_warmup(0.1, 1, 2, 5, then=lambda lr: 3)
