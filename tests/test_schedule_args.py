"""Every schedule factory checks its arguments when it is built.

One table lists, for every public factory of ``gradchain.schedules``, a valid call and its
arguments by kind: values (numbers or arrays, some with a range), step counts (integers), choices
(strings), flags and functions. Each argument is then replaced by values it must refuse, and
the error must start with the factory's public name, then name the argument and show the value
(``TypeError`` for the wrong kind of thing, ``ValueError`` for a value out of range). Traced
values must pass unchecked: each factory is built inside ``jit`` with all its value arguments
traced and gives the numbers it gives untraced.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradchain import schedules as S

CONST = S.constant_schedule(1.0)

# name: (valid keyword arguments, {value argument: (low, high) or None for any real},
#        [step-count arguments, with their lowest allowed value], [choice arguments],
#        [flag arguments], [function arguments])
TABLE = {
    "constant_schedule": ({"value": 0.5}, {"value": None}, {}, [], [], []),
    "constant_lr": ({"init_value": 0.1, "factor": 0.5, "total_iters": 5},
                    {"init_value": None, "factor": (0, 1)}, {"total_iters": 0}, [], [], []),
    "cosine_annealing_lr": ({"init_value": 0.1, "T_max": 10, "eta_min": 0.01},
                            {"init_value": None, "eta_min": None}, {"T_max": 1}, [], [], []),
    "cosine_annealing_warm_restarts": (
        {"init_value": 0.1, "T_0": 4, "T_mult": 2, "eta_min": 0.01},
        {"init_value": None, "eta_min": None}, {"T_0": 1, "T_mult": 1}, [], [], []),
    "cosine_decay_schedule": (
        {"init_value": 0.1, "decay_steps": 10, "alpha": 0.1, "exponent": 2.0},
        {"init_value": None, "alpha": None, "exponent": (0, None)}, {"decay_steps": 1},
        [], [], []),
    "warmup_cosine_decay_schedule": (
        {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 3, "decay_steps": 10,
         "end_value": 0.01, "exponent": 1.0},
        {"init_value": None, "peak_value": None, "end_value": None, "exponent": (0, None)},
        {"warmup_steps": 0, "decay_steps": 4}, [], [], []),
    "cyclic_lr": ({"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "step_size_down": 5,
                   "mode": "exp_range", "gamma": 0.9},
                  {"base_lr": None, "max_lr": None, "gamma": (0, None)},
                  {"step_size_up": 1, "step_size_down": 1}, ["mode"], [], []),
    "cyclic_momentum": ({"base_momentum": 0.8, "max_momentum": 0.9, "step_size_up": 3,
                         "scale_fn": lambda x: 0.5 * x, "scale_mode": "iterations"},
                        {"base_momentum": None, "max_momentum": None},
                        {"step_size_up": 1}, ["scale_mode"], [], ["scale_fn"]),
    "exponential_lr": ({"init_value": 0.1, "gamma": 0.9},
                       {"init_value": None, "gamma": (0, None)}, {}, [], [], []),
    "join_schedules": ({"schedules": [CONST, CONST], "boundaries": [5]}, {}, {}, [], [], []),
    "linear_lr": ({"init_value": 0.1, "start_factor": 0.5, "end_factor": 1.0, "total_iters": 4},
                  {"init_value": None, "start_factor": (0, 1), "end_factor": (0, 1)},
                  {"total_iters": 1}, [], [], []),
    "linear_schedule": ({"init_value": 0.1, "end_value": 0.0, "transition_steps": 10,
                         "transition_begin": 2},
                        {"init_value": None, "end_value": None},
                        {"transition_steps": 1, "transition_begin": 0}, [], [], []),
    "linear_warmup": ({"schedule": CONST, "warmup_steps": 4, "init_value": 0.0},
                      {"init_value": None}, {"warmup_steps": 0}, [], [], ["schedule"]),
    "multi_step_lr": ({"init_value": 0.1, "milestones": [3, 7], "gamma": 0.5},
                      {"init_value": None, "gamma": (0, None)}, {}, [], [], []),
    "one_cycle_lr": ({"max_lr": 0.1, "total_steps": 20, "pct_start": 0.3,
                      "anneal_strategy": "linear", "div_factor": 25.0, "final_div_factor": 1e4,
                      "three_phase": True},
                     {"max_lr": None, "pct_start": (0, 1), "div_factor": (0, None),
                      "final_div_factor": (0, None)},
                     {"total_steps": 1}, ["anneal_strategy"], ["three_phase"], []),
    "one_cycle_momentum": ({"total_steps": 20, "pct_start": 0.3, "anneal_strategy": "cos",
                            "base_momentum": 0.85, "max_momentum": 0.95, "three_phase": False},
                           {"pct_start": (0, 1), "base_momentum": None, "max_momentum": None},
                           {"total_steps": 1}, ["anneal_strategy"], ["three_phase"], []),
    "polynomial_lr": ({"init_value": 0.1, "total_iters": 10, "power": 2.0},
                      {"init_value": None, "power": (0, None)}, {"total_iters": 1}, [], [], []),
    "polynomial_schedule": ({"init_value": 0.1, "end_value": 0.01, "power": 2.0,
                             "transition_steps": 10, "transition_begin": 2},
                            {"init_value": None, "end_value": None, "power": (0, None)},
                            {"transition_steps": 1, "transition_begin": 0}, [], [], []),
    "step_lr": ({"init_value": 0.1, "step_size": 3, "gamma": 0.5},
                {"init_value": None, "gamma": (0, None)}, {"step_size": 1}, [], [], []),
    "warmup_constant_schedule": ({"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 4},
                                 {"init_value": None, "peak_value": None},
                                 {"warmup_steps": 0}, [], [], []),
    "scale_learning_rate": ({"learning_rate": 0.1, "base_batch_size": 256, "batch_size": 1024,
                             "rule": "sqrt"},
                            {"learning_rate": (0, None)},
                            {"base_batch_size": 1, "batch_size": 1}, ["rule"], [], []),
    "linear_scaling_rule": ({"learning_rate": 0.1, "base_batch_size": 256, "batch_size": 1024},
                            {"learning_rate": (0, None)},
                            {"base_batch_size": 1, "batch_size": 1}, [], [], []),
    "sqrt_scaling_rule": ({"learning_rate": 0.1, "base_batch_size": 256, "batch_size": 1024},
                          {"learning_rate": (0, None)},
                          {"base_batch_size": 1, "batch_size": 1}, [], [], []),
    "batch_size_warmup": ({"learning_rate": 0.1, "base_batch_size": 256, "batch_size": 1024,
                           "warmup_steps": 5, "rule": "linear",
                           "then": lambda lr: S.exponential_lr(lr, 0.9)},
                          {"learning_rate": (0, None)},
                          {"base_batch_size": 1, "batch_size": 1, "warmup_steps": 0},
                          ["rule"], [], ["then"]),
}


def test_the_table_covers_every_public_schedule_factory():
    assert set(TABLE) == set(S.__all__)


def build(name, **changes):
    return getattr(S, name)(**{**TABLE[name][0], **changes})


def refusals(name):
    """``(argument, bad value, exception type, message pattern)`` for every argument."""
    values, steps, choices, flags, functions = TABLE[name][1:]
    rows = []
    for arg, bounds in values.items():
        rows += [(arg, "0.1", TypeError, "'0.1'"), (arg, CONST, TypeError, "constant_schedule"),
                 (arg, math.nan, ValueError, "nan")]
        if bounds is not None:
            low, high = bounds
            rows.append((arg, low - 0.5, ValueError, re.escape(repr(low - 0.5))))
            if high is not None:
                rows.append((arg, high + 0.5, ValueError, re.escape(repr(high + 0.5))))
    for arg, low in steps.items():
        rows += [(arg, "10", TypeError, "'10' is not an integer"),
                 (arg, 2.5, ValueError, r"2\.5 is not an integer"),
                 (arg, True, TypeError, "True is not an integer"),
                 (arg, low - 1, ValueError, rf"{low - 1} is out of range; expected {arg} in "
                                            rf"\[{low}, inf\)")]
    for arg in choices:
        rows += [(arg, "nope", ValueError, "'nope' is not one of"),
                 (arg, 1, ValueError, "1 is not one of")]
    for arg in flags:
        rows.append((arg, "yes", TypeError, "'yes' must be True or False"))
    for arg in functions:
        rows.append((arg, 0.5, TypeError, "0.5 is not a"))
    return rows


CASES = [pytest.param(name, *row, id=f"{name}-{row[0]}-{row[1]!r}")
         for name in TABLE for row in refusals(name)]


@pytest.mark.parametrize("name, arg, bad, error, pattern", CASES)
def test_bad_argument_is_refused_naming_schedule_argument_and_value(name, arg, bad, error,
                                                                    pattern):
    with pytest.raises(error, match=rf"^{name}: {arg}\b.*{pattern}") as caught:
        build(name, **{arg: bad})
    assert type(caught.value) is error


def test_valid_calls_build_schedules_or_numbers():
    for name in TABLE:
        made = build(name)
        assert callable(made) or np.isfinite(made), name


SEQUENCE_REFUSALS = [
    (lambda: S.multi_step_lr(0.1, 5), TypeError,
     "multi_step_lr: milestones=5 is not a sequence of step counts"),
    (lambda: S.multi_step_lr(0.1, "5"), TypeError, "multi_step_lr: milestones='5' is not a "
                                                   "sequence"),
    (lambda: S.multi_step_lr(0.1, [3, "7"]), TypeError, "multi_step_lr: milestones[1]='7' is "
                                                        "not an integer"),
    (lambda: S.join_schedules(CONST, [5]), TypeError, "join_schedules: schedules="),
    (lambda: S.join_schedules([CONST, CONST], 5), TypeError,
     "join_schedules: boundaries=5 is not a sequence"),
    (lambda: S.join_schedules([CONST, CONST], [2.5]), ValueError,
     "join_schedules: boundaries[0]=2.5 is not an integer"),
    (lambda: S.join_schedules([CONST, 0.1], [5]), TypeError,
     "join_schedules: schedules[1]=0.1 is not a schedule"),
    (lambda: S.one_cycle_lr(0.1, epochs="3", steps_per_epoch=10), TypeError,
     "one_cycle_lr: epochs='3' is not an integer"),
    (lambda: S.one_cycle_lr(0.1, epochs=3, steps_per_epoch=0), ValueError,
     "one_cycle_lr: steps_per_epoch=0 is out of range"),
    (lambda: jax.jit(lambda p: S.one_cycle_lr(0.1, 20, pct_start=p)(3))(0.3), TypeError,
     "one_cycle_lr: pct_start="),
]


@pytest.mark.parametrize("build_it, error, message", SEQUENCE_REFUSALS)
def test_sequences_and_static_arguments_are_checked(build_it, error, message):
    with pytest.raises(error, match=re.escape(message)):
        build_it()


def test_step_counts_may_be_numpy_or_concrete_jax_integers():
    reference = S.step_lr(0.1, 3, 0.5)(jnp.arange(8))
    for size in (np.int64(3), jnp.asarray(3), np.asarray(3, np.uint8)):
        np.testing.assert_array_equal(S.step_lr(0.1, size, 0.5)(jnp.arange(8)), reference)


STATIC = {"pct_start"}  # places one-cycle's phases: must be known at construction
TRACED = [name for name in TABLE if set(TABLE[name][1]) - STATIC]


@pytest.mark.parametrize("name", TRACED)
def test_traced_values_pass_unchecked_and_give_the_same_numbers(name):
    """All value arguments traced at once; the schedule evaluated at steps 0..11."""
    args = sorted(set(TABLE[name][1]) - STATIC)
    given = [TABLE[name][0][a] for a in args]

    def evaluate(*values):
        made = build(name, **dict(zip(args, values)))
        return made(jnp.arange(12)) if callable(made) else made

    expected = evaluate(*given)
    traced = jax.jit(evaluate)(*[jnp.asarray(v, jnp.float64) for v in given])
    np.testing.assert_allclose(traced, expected, rtol=1e-13, atol=0)
