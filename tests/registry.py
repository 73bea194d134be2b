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
  tests; the costly ones (eager, vmap, grad, low-precision and mixed dtypes: 1-3 s of XLA
  compilation per row) run on ``FAMILIES`` (``CONSTANT_FAMILIES`` for the dtype tests), the
  rows that are not variants: one row per mechanism (per-element moments, per-leaf and
  cross-leaf statistics, Kronecker factors, averaging, learning-rate-free estimates, wrappers),
  the others marked with the family row that runs their mechanism. Scheduled rows are variants;
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
      step_dependent: the update depends on the step count itself long after every ``β^t``
        has underflowed (Adafactor's ``β2_t = 1 - t^{-0.8}``, ADOPT's clip ``(t-1)^{1/4}``,
        MADGRAD's ``λ_t ∝ √t``); the saturation test then checks the count and finiteness only.
      groups_by_shape: the optimizer sends leaves to groups by their rank (Muon: matrices or
        Adam), so a gradient of another rank lands in another group's state.
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
    step_dependent: bool = False
    groups_by_shape: bool = False

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


def contrib(name: str, learning_rate: float, *, strong_rate: bool = False, **kwargs) -> Config:
    """The row for ``gc.<name>(lr, **kwargs)`` against ``optax.contrib.<name>(lr, **kwargs)``.

    ``strong_rate``: give Optax the rate as a float64 array (values of a schedule too): MADGRAD
    rounds its ``λ_t = (γ + ε)√t`` to float32 when ``γ`` is a Python float (weakly typed).
    """
    shown = ", ".join(f"{k}={getattr(v, '__name__', v)}" for k, v in kwargs.items())

    def strong(lr):
        if not strong_rate:
            return lr
        if callable(lr):
            return lambda count: jnp.asarray(lr(count), jnp.float64)
        return jnp.asarray(lr, jnp.float64)

    return Config(name=f"{name}({shown})",
                  make=lambda lr: getattr(gc, name)(lr, **kwargs),
                  optax=lambda lr: getattr(optax.contrib, name)(strong(lr), **kwargs),
                  learning_rate=learning_rate, defaults=not kwargs,
                  step_dependent=name in ("adopt", "madgrad"), groups_by_shape=name == "muon")


def step_dependent(config: Config) -> Config:
    return dataclasses.replace(config, step_dependent=True)



# Issue 11 (k9): schedule-free and learning-rate-free optimizers, Optax's ``optax.contrib``.
def warmed_up_schedule_free(name: str, learning_rate: float, warmup_steps: int, **kwargs):
    """``gc.<name>(lr, warmup_steps=w, **kwargs)`` against Optax's ``schedule_free`` around the
    same base optimizer, both given gradchain's warm-up: Optax's own warm-up computes in float32
    even under float64 (0.0020000003 for 0.002), which moves the float64 run by 1e-8."""
    def reference(lr):
        rate = gc.schedules.warmup_constant_schedule(0.0, lr, warmup_steps)
        if name == "schedule_free_sgd":
            decay = kwargs.get("weight_decay")
            base = optax.chain(optax.identity() if decay is None
                               else optax.add_decayed_weights(decay), optax.sgd(rate))
        else:
            base = optax.chain(
                optax.scale_by_rms(kwargs.get("b2", 0.999), kwargs.get("eps", 1e-8),
                                   eps_in_sqrt=False, bias_correction=True),
                optax.add_decayed_weights(kwargs.get("weight_decay", 0.0)),
                optax.scale_by_learning_rate(rate))
        return optax.contrib.schedule_free(base, rate, kwargs.get("b1", 0.9))

    shown = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    return variant(Config(f"{name}(warmup_steps={warmup_steps}, {shown})",
                          lambda lr: getattr(gc, name)(lr, warmup_steps=warmup_steps, **kwargs),
                          optax=reference, learning_rate=learning_rate))


SCHEDULE_FREE_ADAMW = contrib("schedule_free_adamw", 0.05)
# The learning-rate-free rows start from larger estimates than the defaults (d_0 = 1e-6, DoG's
# r_ε = 1e-6 (1 + ‖θ_0‖), Mechanic's s = 1e-6): from those, the first updates are ~1e-6,
# below float16's normal range, and 5 steps barely move, so the low-precision and the
# learning-rate-gradient contract tests would measure rounding. The default arguments' parity
# with Optax is test_schedule_free_and_lr_free.py's.
PRODIGY = contrib("prodigy", 1.0, estim_lr0=1e-3)

CONFIGS = [
    variant(SGD),  # its one primitive is in sgd(momentum) too
    SGD_MOMENTUM,
    variant(alias("sgd", 0.02, momentum=0.9, nesterov=True)),
    ADAGRAD,
    variant(alias("rmsprop", 1e-3)),  # rmsprop(momentum) has the same preconditioner
    alias("rmsprop", 1e-3, centered=True),
    variant(RMSPROP_MOMENTUM),  # rmsprop(centered=True)'s and sgd(momentum)'s primitives
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
    variant(ADAMW),  # add_decayed_weights: lion()'s and cocob(...)'s family rows
    AMSGRAD,
    # Scheduled rows. RMSProp, Adadelta, AMSGrad, RAdam, NAdam, Yogi, ADOPT and AdEMAMix take
    # the rate only in their final scale_by_learning_rate, which the scheduled rows of sgd,
    # adagrad, adam and adamw run; rows whose rate enters elsewhere keep theirs (LAMB's and
    # Fromage's norms, MADGRAD's λ_t, Adafactor's relative step, schedule-free's weights).
    scheduled(SGD_MOMENTUM),
    scheduled(ADAGRAD),
    scheduled(ADAM),
    scheduled(ADAMW),
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
    variant(FROMAGE),  # per-leaf norms of the step: lamb()'s family row
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
    variant(alias("nadamw", 0.03)),  # adamw(nesterov=True)'s primitives
    variant(alias("nadamw", 0.03, weight_decay=0.1, mask=decay_only_w)),
    complex_params(ADABELIEF),  # a complex m shared with a real s
    complex_params(YOGI),       # Optax's complex Yogi: |g|² moments
    # Issue 11 (k10). Shampoo's roots on the 1-D leaves (full matrices), whose statistics of
    # fewer gradients than rows have repeated eigenvalues: the roots' derivative is written out
    # for that (kronecker/roots.py). SOAP keeps the authors' default (1-D leaves: Adam in the
    # identity basis): a basis made from fewer gradients than rows is arbitrary in the null
    # directions, so neither its derivative nor its batched run is defined there;
    # test_matrix_preconditioners runs SOAP's bases under jit, vmap and grad on matrix leaves.
    # The averaging wrappers leave the trajectory as the inner optimizer makes it: Adam's.
    # Shampoo's ε: an eigenvalue of a factor is known to ~1e-16 ‖H‖ only, so the root
    # (λ + ε)^(-1/2) carries a relative error of ~1e-16 ‖H‖ / ε. With ε = 1e-6 (‖H‖ ≈ 6 after
    # one step) eager and jit differ by 3e-10 in the roots, beyond the eager test's 1e-13;
    # ε = 1 keeps it below ~1e2 (ε = 0.1: 1e-13, at the vmap test's bound).
    # Kronecker factors and their inverse roots: soap()'s family row.
    variant(Config("shampoo(eps=1.0, precondition_1d=True)",
                   lambda lr: gc.shampoo(lr, eps=1.0, precondition_1d=True),
                   learning_rate=0.01)),
    # SOAP's rate and β2 keep every entry of the vmap test's 3-step params and moments away from
    # 0 (with the defaults one ends at 4e-5, where 1e-17 of rounding breaks its elementwise
    # 1e-13).
    Config("soap(b2=0.99)", lambda lr: gc.soap(lr, b2=0.99), learning_rate=0.03),
    Config("swa(ema_params(adam))", lambda lr: gc.swa(gc.ema_params(gc.adam(lr), 0.9), 2),
           optax=lambda lr: optax.adam(lr), learning_rate=0.03),
]

# Issue 11 (k8): Adam family part 2, factored and matrix-wise optimizers. Optax keeps adopt,
# ademamix, simplified_ademamix, madgrad and muon in ``optax.contrib``: their rows have no
# ``alias`` record (it names an ``optax.<name>``). On this problem's vectors Adafactor keeps
# unfactored moments and Muon hands every leaf to Adam; ``tests/test_matrix_optimizers.py``
# checks both on matrices. The learning rates keep the runs out of limit cycles (float64
# open-loop errors ~1e-16).


NOVOGRAD = alias("novograd", 0.02)
ADOPT = contrib("adopt", 0.03)
ADEMAMIX = contrib("ademamix", 0.03)
MADGRAD = contrib("madgrad", 0.01, strong_rate=True)
ADAFACTOR = step_dependent(alias("adafactor", 0.03))
MUON = contrib("muon", 0.03)
CONFIGS += [
    variant(NOVOGRAD),  # per-leaf statistics: adafactor()'s family row
    variant(alias("novograd", 0.02, weight_decay=0.1)),
    variant(ADOPT),  # per-element moments: adam()'s and ademamix()'s family rows
    variant(contrib("adopt", 0.03, nesterov=True)),
    variant(ADEMAMIX),  # EMAs with bias corrections: adam()'s family row
    variant(contrib("ademamix", 0.03, weight_decay=0.1, mask=decay_only_w)),
    variant(contrib("simplified_ademamix", 0.001, alpha=2.0)),  # ademamix()'s primitives
    variant(MADGRAD),  # per-element dual averaging: adam()'s and ademamix()'s
    variant(contrib("madgrad", 0.01, strong_rate=True, weight_decay=0.1)),
    ADAFACTOR,
    # Optax hands on its momentum before rounding it to dtype_momentum, gradchain after.
    variant(step_dependent(alias("adafactor", 0.01, momentum=0.9, dtype_momentum=None,
                                 weight_decay_rate=0.001))),
    MUON,
    scheduled(MADGRAD),
    scheduled(ADAFACTOR),
    complex_params(NOVOGRAD),
    complex_params(ADEMAMIX),
    # Issue 11 (k9): schedule-free and learning-rate-free optimizers (optax.contrib).
    SCHEDULE_FREE_ADAMW,
    # b1 = 0.8 with weight_decay = 0.1 is chaotic (1e-13 grows 5e6-fold): the decay is the
    # warmed-up row's.
    variant(contrib("schedule_free_adamw", 0.05, b1=0.8, weight_lr_power=1.0)),
    scheduled(SCHEDULE_FREE_ADAMW),
    warmed_up_schedule_free("schedule_free_adamw", 0.05, 10, weight_decay=0.1),
    variant(contrib("schedule_free_sgd", 0.02)),
    warmed_up_schedule_free("schedule_free_sgd", 0.02, 10, weight_decay=0.1),
    PRODIGY,
    variant(contrib("prodigy", 0.5, betas=(0.9, 0.99), beta3=0.95, estim_lr0=1e-3,
                    estim_lr_coef=0.5, weight_decay=0.1, safeguard_warmup=True)),
    variant(contrib("dadapt_adamw", 1.0, estim_lr0=1e-3)),  # cross-leaf, as prodigy()
    variant(contrib("dadapt_adamw", 0.5, betas=(0.8, 0.99), estim_lr0=1e-3, weight_decay=0.1)),
    # DoG's first step has length r_ε whatever the gradient: at γ = 1 the second step's distance
    # is exactly r_ε, the kink of its max, so the family row (d loss / dγ) runs at γ = 0.8.
    contrib("dog", 0.8, init_step=("distance", 0.1)),
    variant(contrib("dog", 0.5, init_step=("learning_rate", 0.01), weight_decay=0.1,
                    mask=decay_only_w)),
    variant(contrib("dowg", 1.0)),  # dog()'s distance and norm statistics
    variant(contrib("dowg", 0.5, init_estim_sq_dist=0.01, eps=1e-6, weight_decay=0.1)),
    # COCOB's step does not change when the gradients are scaled, unless ε (the starting scale
    # of |g|) is comparable to them: the learning rate then matters, as the contract tests need.
    variant(contrib("cocob", 1.0)),
    contrib("cocob", 1.0, alpha=50.0, eps=1.0, weight_decay=0.1, mask=decay_only_w),
    # Mechanic learns its scale through maxima and clips of an inner product: from the default
    # s_init = 1e-6 the run is chaotic here (see test_schedule_free_and_lr_free.py); from 1e-2
    # a 1e-13 perturbation of the start grows 1.3-fold.
    Config("mechanize(sgd(momentum=0.9), s_init=0.01)",
           lambda lr: gc.mechanize(gc.sgd(lr, momentum=0.9), s_init=1e-2),
           optax=lambda lr: optax.contrib.mechanize(optax.sgd(lr, momentum=0.9), s_init=1e-2),
           learning_rate=0.01),
]

WITH_OPTAX = [c for c in CONFIGS if c.optax is not None]
CONSTANT = [c for c in CONFIGS if not c.schedule and not c.complex]
FAMILIES = [c for c in CONFIGS if not c.variant]
CONSTANT_FAMILIES = [c for c in CONSTANT if not c.variant]


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
    # Issue 11 (k8)
    ("novograd", "novograd", dict(learning_rate=1e-3, weight_decay=1e-4)),
    ("adopt", "adopt", dict(learning_rate=1e-3)),
    ("ademamix", "ademamix", dict(learning_rate=1e-3, weight_decay=1e-4)),
    ("simplified_ademamix", "simplified_ademamix", dict(learning_rate=1e-3, alpha=1.0,
                                                        weight_decay=1e-4)),
    ("madgrad", "madgrad", dict(learning_rate=1e-3, weight_decay=1e-4)),
    ("adafactor", "adafactor", dict(learning_rate=1e-3, momentum=0.9, weight_decay_rate=1e-4)),
    ("muon", "muon", dict(learning_rate=1e-3, weight_decay=1e-4, adam_weight_decay=1e-4)),
    # Issue 11 (k10).
    ("soap", "soap", dict(learning_rate=1e-3, shampoo_beta=0.9)),
    ("shampoo", "shampoo", dict(learning_rate=0.1, weight_decay=1e-4, nesterov=True)),
    # Issue 11 (k9): schedule-free and learning-rate-free optimizers.
    ("schedule_free_sgd", "schedule_free_sgd", dict(learning_rate=0.1, weight_decay=1e-4)),
    ("schedule_free_adamw", "schedule_free_adamw", dict(weight_decay=1e-4)),
    ("prodigy", "prodigy", dict(beta3=0.99, weight_decay=1e-4)),
    ("dadapt_adamw", "dadapt_adamw", dict(weight_decay=1e-4)),
    ("dog", "dog", dict(weight_decay=1e-4)),
    ("dowg", "dowg", dict(init_estim_sq_dist=1e-2, weight_decay=1e-4)),
    ("cocob", "cocob", dict(weight_decay=1e-4)),
]
