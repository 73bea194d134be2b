"""The one registry of optimizer configurations that drives the contract tests.

Each row (a ``Config``) names a configuration and builds it as a function of the learning rate:
``make(learning_rate)`` gives the gradchain transformation and, where Optax has the same
algorithm with the same convention, ``optax(learning_rate)`` gives Optax's. Building from the
learning rate lets every contract test vary it the way it needs: a number, a schedule, a traced
scalar under ``jax.grad`` or a batch under ``vmap``.

Adding an optimizer is adding a row to ``CONFIGS``:

- ``alias("adam", 1e-2)``: gradchain's and Optax's aliases of that name, given the same
  arguments (a row with no keyword arguments is the drop-in check: the alias called with only a
  learning rate must equal Optax's);
- ``scheduled(row)``: the same row with ``make_schedule(row.learning_rate)`` (an Optax
  schedule) as learning rate, given to both libraries;
- ``variant(row)``: a row that only changes option values of primitives another row already
  exercises (eps placement, an extra constant). It gets Optax parity and the cheap contract
  tests; the costly ones (eager, vmap, grad: 2-3 s of XLA compilation per row) run on
  ``FAMILIES``, the rows that are not variants. Scheduled rows are variants;
- ``Config(name, make, optax=None, learning_rate=...)`` for anything else, e.g. an optimizer
  Optax does not have (``optax=None``: it then gets every contract test except Optax parity);
- ``complex_params(row)``: the same row on the complex version of the test problem (complex128
  for the float64 runs, complex64 for the float32 ones; ``problems.gradient`` conjugates
  ``jax.grad`` as Optax's tests do). Complex rows are variants except one family row (Adam),
  which runs the costly contract tests on complex params. The tests that build their own real
  params (low-precision dtypes, validation) run on ``CONSTANT``, which leaves complex rows out.

``learning_rate`` is the value the row is run with on ``tests/problems.py`` for ``STEPS`` steps.
Choose it so that the run makes real progress but does not end in a limit cycle: adaptive methods
near sign descent (RMSProp) that bounce around the optimum amplify 1-ulp differences chaotically,
and the float64 closed-loop comparison then measures the chaos, not the optimizer (check the
float64 open-loop error, ~1e-16, to tell the two apart).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import optax

import gradchain as gc

STEPS = 200


def make_schedule(peak):
    """Warm-up then cosine decay over ``STEPS`` steps: the value changes at every step."""
    return optax.warmup_cosine_decay_schedule(0.1 * peak, peak, STEPS // 10, STEPS,
                                              end_value=0.05 * peak)


@dataclasses.dataclass(frozen=True)
class Config:
    """One optimizer configuration.

    Attributes:
      name: the test id.
      make: ``learning_rate -> gradchain transformation``.
      optax: ``learning_rate -> Optax transformation`` with the same numbers, or None.
      learning_rate: the number the row is run with.
      schedule: run with ``make_schedule(learning_rate)`` instead of the constant.
      defaults: every other argument is left at its default (the drop-in rows).
      variant: exercises no primitive that a non-variant row does not (see ``variant``).
      alias: for rows built by ``alias``, the alias's name and keyword arguments (as sorted
        pairs, so the row stays hashable), for tests that call both aliases another way
        (e.g. through ``optax.inject_hyperparams``).
      complex: run on complex params (see ``complex_params``).
    """

    name: str
    make: Callable[[Any], Any]
    optax: Optional[Callable[[Any], Any]] = None
    learning_rate: float = 1e-2
    schedule: bool = False
    defaults: bool = False
    variant: bool = False
    alias: Optional[tuple[str, tuple]] = None
    complex: bool = False

    def dtype(self, precision: str):
        """The params' dtype of the row's ``"float64"`` or ``"float32"`` run."""
        if self.complex:
            return {"float64": jnp.complex128, "float32": jnp.complex64}[precision]
        return jnp.dtype(precision)

    def rate(self):
        """The learning rate the row is run with: the number, or its schedule."""
        return make_schedule(self.learning_rate) if self.schedule else self.learning_rate

    def gradchain(self, learning_rate=None):
        return self.make(self.rate() if learning_rate is None else learning_rate)

    def reference(self, learning_rate=None):
        return self.optax(self.rate() if learning_rate is None else learning_rate)


def decay_only_w(params):
    """A decay mask, as a function of the params (so it fits any tree): the leaves named ``w``."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) == "w", params)


def alias(name: str, learning_rate: float, **kwargs) -> Config:
    """The row for ``gc.<name>(lr, **kwargs)`` against ``optax.<name>(lr, **kwargs)``."""
    shown = ", ".join(f"{k}={getattr(v, '__name__', v)}" for k, v in kwargs.items())
    return Config(
        name=f"{name}({shown})",
        make=lambda lr: getattr(gc, name)(lr, **kwargs),
        optax=lambda lr: getattr(optax, name)(lr, **kwargs),
        learning_rate=learning_rate,
        defaults=not kwargs,
        alias=(name, tuple(sorted(kwargs.items()))))


def scheduled(config: Config) -> Config:
    """``config`` run with a scheduled learning rate."""
    return dataclasses.replace(config, name=f"{config.name}[schedule]", schedule=True,
                               defaults=False, variant=True)


def complex_params(config: Config, *, family: bool = False) -> Config:
    """``config`` on complex params; a variant unless ``family`` (see the module docstring)."""
    return dataclasses.replace(config, name=f"{config.name}[complex]", complex=True,
                               defaults=False, variant=not family)


def variant(config: Config) -> Config:
    """``config`` marked as a variant: it gets parity and the cheap contract tests only."""
    return dataclasses.replace(config, variant=True)


SGD = alias("sgd", 0.02)
SGD_MOMENTUM = alias("sgd", 0.02, momentum=0.9)
ADAGRAD = alias("adagrad", 0.15)
RMSPROP_MOMENTUM = alias("rmsprop", 3e-4, momentum=0.9)
ADADELTA = alias("adadelta", 15.0)
ADAM = alias("adam", 0.03)
ADAMW = alias("adamw", 0.03, weight_decay=0.1)
AMSGRAD = alias("amsgrad", 0.03)
# The notes' second half. AdaBound/AMSBound, Lookahead and noisy SGD have no rows: their updates
# depend on the step count itself (bounds closing like 1/t, the sync phase, the annealed noise)
# long after every β^t has underflowed, which the saturation contract assumes away. Their own
# test files check them under jit, vmap and grad and against their references.
RADAM = alias("radam", 0.03)
NADAM = alias("nadam", 0.03)
# LAMB's step has norm γ‖θ‖ per leaf whatever the gradient, so at a constant rate it ends in a
# limit cycle around the optimum; 3e-3 keeps the 200 steps out of it (a 1e-13 perturbation of
# the start grows 1.3-fold, against 7e11-fold at 3e-2). The same holds for LARS at 0.5 with
# decay and Nesterov (2e5-fold; 1.3-fold at 0.3).
LAMB = alias("lamb", 0.003)

COMPLEX_ADAM = complex_params(ADAM, family=True)

# Issue 11, sign and memory-light optimizers and the Adam family (part 1). Sign methods move
# every coordinate by ±γ whatever the gradient's size; at these rates the 200 steps stay out of
# the limit cycle around the optimum (a 1e-13 perturbation of the start stays 1.5-fold; Fromage,
# whose step is γ‖θ‖ per leaf like LAMB's, amplifies it 4e9-fold at 1e-2 and 1.5-fold at 3e-3).
LION = alias("lion", 0.01)
FROMAGE = alias("fromage", 0.003)
OPTIMISTIC_GD = alias("optimistic_gradient_descent", 0.02)
ADABELIEF = alias("adabelief", 0.03)
# Adan's v averages gradient differences g_t - g_{t-1}: under vmap the problem's batched
# gradient differs from the unbatched one in the last bit, which the difference magnifies past
# the vmap test's element-wise 1e-13 (4.5e-13 measured, in v). It is a variant: its primitives
# run in the family rows of optimistic_gradient_descent (gradient_difference) and adabelief
# (shared statistics), and tests/test_modern_sign_adam.py runs the vmap test on it with a
# tolerance relative to each leaf's largest entry.
ADAN = variant(alias("adan", 0.03))
YOGI = alias("yogi", 0.03)
# Optax 0.2.8's rprop applies the step it chose one update earlier (see ``gc.rprop``); the
# default is the algorithm of the papers and torch (tests/test_modern_sign_adam.py), and
# ``stale_update=True`` gives Optax's numbers.
RPROP = Config("rprop", lambda lr: gc.rprop(lr), learning_rate=0.01)

CONFIGS = [
    variant(SGD),  # its one primitive is in sgd(momentum) too
    SGD_MOMENTUM,
    variant(alias("sgd", 0.02, momentum=0.9, nesterov=True)),
    ADAGRAD,
    variant(alias("rmsprop", 1e-3)),  # rmsprop(momentum) has the same preconditioner
    alias("rmsprop", 1e-3, centered=True),
    RMSPROP_MOMENTUM,
    variant(alias("rmsprop", 1e-3, eps_in_sqrt=False)),
    variant(alias("rmsprop", 1e-3, bias_correction=True)),
    ADADELTA,
    ADAM,
    variant(alias("adam", 0.03, eps_root=1e-8)),
    variant(alias("adamw", 0.03)),
    # Optax's remaining alias arguments: Nesterov Adam, decay masks, AMSGrad without corrections.
    variant(alias("adam", 0.03, nesterov=True)),
    variant(alias("adamw", 0.03, weight_decay=0.1, mask=decay_only_w, nesterov=True)),
    variant(alias("adadelta", 15.0, weight_decay=0.1, weight_decay_mask=decay_only_w)),
    variant(alias("amsgrad", 0.03, bias_correction_mu=False, bias_correction_nu=False)),
    ADAMW,
    AMSGRAD,
    scheduled(SGD_MOMENTUM),
    scheduled(ADAGRAD),
    scheduled(RMSPROP_MOMENTUM),
    scheduled(ADADELTA),
    scheduled(ADAM),
    scheduled(ADAMW),
    scheduled(AMSGRAD),
    RADAM,
    variant(alias("radam", 0.03, nesterov=True)),
    variant(alias("radam", 0.03, threshold=4.0)),
    NADAM,
    LAMB,
    variant(alias("lamb", 0.003, weight_decay=0.1)),
    variant(alias("lars", 0.5)),
    variant(alias("lars", 0.3, weight_decay=0.1, nesterov=True)),
    variant(Config("sgdw(momentum=0.9, weight_decay=0.1)",
                   lambda lr: gc.sgdw(lr, 0.9, weight_decay=0.1),
                   optax=lambda lr: optax.chain(optax.trace(0.9), optax.add_decayed_weights(0.1),
                                                optax.scale_by_learning_rate(lr)),
                   learning_rate=0.02)),
    # SWATS' switch is a discontinuous decision: near its threshold, rounding decides it, so two
    # correct runs in different dtypes can differ. A huge tolerance makes it switch after step 2
    # whatever the rounding, and the contract tests exercise both phases.
    Config("swats(tolerance=1e9)", lambda lr: gc.swats(lr, tolerance=1e9), learning_rate=0.03),
    scheduled(RADAM),
    scheduled(NADAM),
    scheduled(alias("lamb", 0.005)),
    # Complex params, Optax's conventions (|g|² second moments): one row per set of primitives
    # among the aliases Optax runs on them (adamw and rmsprop(momentum) add none).
    COMPLEX_ADAM,
    complex_params(SGD_MOMENTUM),
    complex_params(ADAGRAD),
    complex_params(alias("rmsprop", 1e-3, centered=True)),
    complex_params(AMSGRAD),
    complex_params(RADAM),
    complex_params(NADAM),
    complex_params(LAMB),
    complex_params(alias("lars", 0.3, weight_decay=0.1, nesterov=True)),
    # Issue 11: sign and memory-light optimizers, the Adam family (part 1).
    LION,
    variant(alias("lion", 0.01, b1=0.95, b2=0.98, weight_decay=0.1, mask=decay_only_w)),
    scheduled(LION),
    # sign_sgd, adamax and yogi add one-line kit rules (a sign; a running maximum and Yogi's
    # additive moment, each one stateful elementwise rule) of the kinds that the lion,
    # fromage and adabelief rows run through the costly contract tests.
    variant(alias("sign_sgd", 0.01)),
    variant(alias("signum", 0.01)),  # ema and the sign: in adam and sign_sgd
    variant(alias("signum", 0.01, beta=0.5)),
    RPROP,
    variant(Config("rprop(stale_update=True)", lambda lr: gc.rprop(lr, stale_update=True),
                   optax=lambda lr: optax.rprop(lr), learning_rate=0.01)),
    variant(Config("rprop(stale_update=True, eta_minus=0.3, eta_plus=1.5, max_step_size=0.05)",
                   lambda lr: gc.rprop(lr, 0.3, 1.5, 1e-6, 0.05, stale_update=True),
                   optax=lambda lr: optax.rprop(lr, 0.3, 1.5, 1e-6, 0.05), learning_rate=0.01)),
    FROMAGE,
    scheduled(FROMAGE),
    OPTIMISTIC_GD,
    variant(alias("optimistic_gradient_descent", 0.02, alpha=0.5, beta=2.0)),
    ADABELIEF,
    variant(alias("adabelief", 0.03, nesterov=True)),
    variant(alias("adabelief", 0.03, eps=1e-8, eps_root=0.0)),
    scheduled(ADABELIEF),
    ADAN,
    variant(alias("adan", 0.03, weight_decay=0.1, mask=decay_only_w)),
    variant(alias("adamax", 0.03)),
    variant(alias("adamaxw", 0.03)),
    variant(alias("adamaxw", 0.03, weight_decay=0.1, mask=decay_only_w)),
    variant(YOGI),
    scheduled(YOGI),
    variant(alias("nadamw", 0.03)),  # adamw(nesterov=True)'s primitives
    variant(alias("nadamw", 0.03, weight_decay=0.1, mask=decay_only_w)),
    complex_params(ADABELIEF),  # a complex m shared with a real s
    complex_params(YOGI),       # Optax's complex Yogi: |g|² moments
]

WITH_OPTAX = [c for c in CONFIGS if c.optax is not None]
CONSTANT = [c for c in CONFIGS if not c.schedule and not c.complex]
FAMILIES = [c for c in CONFIGS if not c.variant]


def ids(configs):
    return [c.name for c in configs]

# Every named optimizer, called with arguments that switch on each of its optional stages
# (momentum, weight decay, multipliers), for the tests that go through all of an alias's
# arguments: each numeric argument out of its range is refused naming the alias and the
# argument, and each hyperparameter it stores is checked by ``set_hyperparams`` against the same
# range. ``(label, alias, keyword arguments)``.
ALIAS_CALLS = [
    ("sgd", "sgd", dict(learning_rate=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-4)),
    ("sgd(nesterov)", "sgd", dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("adagrad", "adagrad", dict(learning_rate=0.1, weight_decay=1e-4)),
    ("adagrad(eps_in_sqrt=False)", "adagrad", dict(learning_rate=0.1, eps_in_sqrt=False)),
    ("rmsprop", "rmsprop", dict(learning_rate=0.1, momentum=0.9, weight_decay=1e-4)),
    ("rmsprop(centered)", "rmsprop", dict(learning_rate=0.1, centered=True,
                                         bias_correction=True, eps_in_sqrt=False)),
    ("adadelta", "adadelta", dict(weight_decay=1e-4)),
    ("adam", "adam", dict(learning_rate=1e-3, weight_decay=1e-4)),
    ("adam(nesterov)", "adam", dict(learning_rate=1e-3, nesterov=True)),
    ("adamw", "adamw", dict(learning_rate=1e-3)),
    ("adamw(multiplier)", "adamw", dict(learning_rate=1e-3, multiplier=0.5)),
    ("amsgrad", "amsgrad", dict(learning_rate=1e-3, weight_decay=1e-4)),
    ("amsgrad(max_on_raw)", "amsgrad", dict(learning_rate=1e-3, max_on_raw=True)),
    ("adabound", "adabound", dict(weight_decay=1e-4)),
    ("adabound(base_learning_rate)", "adabound", dict(base_learning_rate=1e-2)),
    ("amsbound", "amsbound", dict(weight_decay=1e-4)),
    ("swats", "swats", dict(weight_decay=1e-4)),
    ("radam", "radam", dict(learning_rate=1e-3, weight_decay=1e-4)),
    ("radam(decoupled)", "radam", dict(learning_rate=1e-3, weight_decay=1e-4,
                                       decoupled_weight_decay=True, nesterov=True)),
    ("nadam", "nadam", dict(learning_rate=1e-3, weight_decay=1e-4, momentum_decay=4e-3)),
    ("nadam(decoupled)", "nadam", dict(learning_rate=1e-3, weight_decay=1e-4,
                                       decoupled_weight_decay=True)),
    ("sgdw", "sgdw", dict(learning_rate=0.1, momentum=0.9, dampening=0.1)),
    ("sgdw(multiplier)", "sgdw", dict(learning_rate=0.1, multiplier=0.5)),
    ("lars", "lars", dict(learning_rate=0.1, weight_decay=1e-4)),
    ("lamb", "lamb", dict(learning_rate=1e-3, weight_decay=1e-4)),
    ("noisy_sgd", "noisy_sgd", dict(learning_rate=0.1, key=0)),
    ("lookahead", "lookahead", dict(inner=gc.sgd(0.1))),
    # Issue 11: sign and memory-light optimizers, the Adam family (part 1).
    ("lion", "lion", dict(learning_rate=1e-4)),
    ("sign_sgd", "sign_sgd", dict(learning_rate=1e-3)),
    ("signum", "signum", dict(learning_rate=1e-3)),
    ("rprop", "rprop", dict(learning_rate=1e-3)),
    ("fromage", "fromage", dict(learning_rate=1e-2)),
    ("optimistic_gradient_descent", "optimistic_gradient_descent",
     dict(learning_rate=1e-2)),
    ("adabelief", "adabelief", dict(learning_rate=1e-3)),
    ("adan", "adan", dict(learning_rate=1e-3, weight_decay=1e-4)),
    ("adamax", "adamax", dict(learning_rate=1e-3)),
    ("adamaxw", "adamaxw", dict(learning_rate=1e-3)),
    ("yogi", "yogi", dict(learning_rate=1e-3)),
    ("nadamw", "nadamw", dict(learning_rate=1e-3)),
]
