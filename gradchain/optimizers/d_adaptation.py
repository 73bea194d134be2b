"""D-Adaptation (AdamW form) and Prodigy: learning-rate-free Adam (see
``preconditioners/d_adaptation.py``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import scalar_dtype
from gradchain.core.hyperparams import ScalarsByDtype, cast
from gradchain.core.public import public
from gradchain.core.reductions import shown_with_axis_name
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_not_schedule, check_range
from gradchain.kit.contract import Contract
from gradchain.preconditioners.d_adaptation import (REAL_ONLY, DAdaptAdamWState, ProdigyState,
                                                    check_betas, check_common, leaf_outputs,
                                                    leaf_statistics, step_correction,
                                                    with_complements, zero_statistics)
from gradchain.core.hyperparams import ScalarOrSchedule


@public
def dadapt_adamw(learning_rate: ScalarOrSchedule = 1.0, betas=(0.9, 0.999),
                 eps: ScalarOrSchedule = 1e-8, estim_lr0=1e-6, weight_decay: ScalarOrSchedule = 0.0,
                 *, axis_name=None) -> GradientTransformation:
    """D-Adaptation, AdamW form (Defazio & Mishchenko 2023, Algorithm 4 as Optax has it).

    With ``d`` the estimate (``d_0 = estim_lr0``), ``γ_t`` the learning rate at ``t - 1`` and
    ``d_t = d · γ_t · √(1 - β2^t) / (1 - β1^t)``, each update::

        num ← √β2 · num + (1 - √β2) · d_t · ⟨g, s / (√v + ε)⟩      (old s, v)
        m ← β1 m + (1 - β1) d_t g        v ← β2 v + (1 - β2) g²
        s ← √β2 s + (1 - √β2) d_t g      d ← max(d, num / ((1 - √β2) ‖s‖₁))
        θ ← θ - m / (√v + ε) - λ d_t θ

    (the step uses the ``d`` from before the update). Optax's ``contrib.dadapt_adamw``: same
    arguments, defaults and numbers. Needs ``params``.

    Args:
      learning_rate: γ ``>= 0``, a multiplier of ``d``: a number, array or schedule.
      betas: ``(β1, β2)``, each in ``[0, 1)`` (stored as ``beta1``, ``beta2``).
      eps: ε ``>= 0``.
      estim_lr0: ``d_0 > 0``, an under-estimate (used once, at ``init``).
      weight_decay: λ ``>= 0``, decoupled, scaled by ``d_t``.
      axis_name: the axis the leaves are split over, for the two reductions, or None.

    Returns:
      A ``GradientTransformation`` whose state is a ``DAdaptAdamWState``: the moments
      ``exp_avg`` and ``exp_avg_sq``, the weighted sum ``grad_sum``, the estimate ``estim_lr``
      (``d``), the scalar ``numerator_weighted``, the count and the hyperparameters.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.dadapt_adamw(estim_lr0=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # d_0 = 0.1: a visible step
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.7862, -1.889]
    """
    name = "dadapt_adamw"
    check_betas(name, betas)
    check_common(name, learning_rate, eps, weight_decay, estim_lr0, axis_name)
    check_not_schedule(name, "estim_lr0", estim_lr0)
    contract = Contract(name, {"learning_rate": learning_rate, "beta1": betas[0],
                               "beta2": betas[1], "eps": eps, "weight_decay": weight_decay},
                        counts=True, real_input=REAL_ONLY)

    def init(params):
        contract.check_params(params)
        dtype = scalar_dtype(params)
        return DAdaptAdamWState(zero_statistics(params), zero_statistics(params),
                                zero_statistics(params), jnp.asarray(estim_lr0, dtype),
                                jnp.zeros([], dtype), contract.init_count(),
                                contract.init_hyperparams())

    def rule(g, p, m, v, s, *, dlr, beta1, one_minus_beta1, beta2, one_minus_beta2,
             sqrt_beta2, one_minus_sqrt_beta2, eps, **unused):
        numerator = jnp.sum(g * (s / (jnp.sqrt(v) + eps)))
        m = beta1 * m + one_minus_beta1 * dlr * g
        v = beta2 * v + one_minus_beta2 * g * g
        s = sqrt_beta2 * s + one_minus_sqrt_beta2 * dlr * g
        return (m, v, s), (numerator, jnp.sum(jnp.abs(s)))

    def final(p, m, v, *, dlr, eps, weight_decay, **unused):
        return -weight_decay * dlr * p - m / (jnp.sqrt(v) + eps)

    def update(updates, state, params=None, **extra):
        del extra
        step = contract.begin(updates, state, params, stat=state.exp_avg, needs_params=True)
        values = step.values
        dtype = state.estim_lr.dtype
        correction = step_correction(values, step.step)
        dlr = cast(state.estim_lr * values["learning_rate"] * correction, dtype)
        sqrt_beta2 = jnp.sqrt(values["beta2"])
        scalars = ScalarsByDtype({"dlr": dlr, **with_complements(values, "beta1", "beta2"),
                                  "sqrt_beta2": sqrt_beta2,
                                  "one_minus_sqrt_beta2": 1 - sqrt_beta2, "eps": values["eps"],
                                  "weight_decay": values["weight_decay"]})
        (m, v, s), sums = leaf_statistics(
            rule, updates, params, (state.exp_avg, state.exp_avg_sq, state.grad_sum),
            scalars, axis_name)
        numerator, l1 = (cast(x, dtype) for x in sums)
        weighted = (cast(sqrt_beta2, dtype) * state.numerator_weighted
                    + cast(1 - sqrt_beta2, dtype) * dlr * numerator)
        estim_lr = jnp.maximum(state.estim_lr, weighted / (cast(1 - sqrt_beta2, dtype) * l1))
        out = leaf_outputs(final, params, (m, v), scalars)
        return out, DAdaptAdamWState(m, v, s, estim_lr, weighted, step.count, step.stored)

    return GradientTransformation(
        init, update, name=name, state_type=DAdaptAdamWState,
        hyperparams=shown_with_axis_name(
            {"learning_rate": learning_rate, "betas": betas, "eps": eps,
             "estim_lr0": estim_lr0, "weight_decay": weight_decay}, axis_name))


@public
def prodigy(learning_rate: ScalarOrSchedule = 1.0, betas=(0.9, 0.999), beta3=None,
            eps: ScalarOrSchedule = 1e-8, estim_lr0: ScalarOrSchedule = 1e-6,
            estim_lr_coef: ScalarOrSchedule = 1.0, weight_decay: ScalarOrSchedule = 0.0,
            safeguard_warmup: bool = False, *, axis_name=None) -> GradientTransformation:
    """Prodigy (Mishchenko & Defazio 2024): D-Adaptation's AdamW with faster-growing ``d``.

    With ``d`` the estimate (``d_0 = estim_lr0``), ``γ_t`` the learning rate at ``t - 1``,
    ``d_t = d · γ_t · √(1 - β2^t) / (1 - β1^t)`` and ``θ_0`` the params at ``init``::

        m ← β1 m + (1 - β1) d g          v ← β2 v + (1 - β2) d² g²
        s ← β3 s + (d_t / d_0) d g       (d / d_0 · d g with safeguard_warmup)
        num ← β3 num + (d / d_0) d_t ⟨g, θ_0 - θ⟩
        d ← max(d, c · num / ‖s‖₁)
        θ ← θ - d_t m / (√v + d ε) - λ d_t θ

    (the step uses the ``d`` from before the update; ``β3 = √β2`` by default, following
    ``beta2`` when that is set at run time). Optax's ``contrib.prodigy``: same arguments,
    defaults and numbers. Needs ``params``; give ``init`` the real starting params.

    Args:
      learning_rate: γ ``>= 0``, a multiplier of ``d``: a number, array or schedule.
      betas: ``(β1, β2)``, each in ``[0, 1)`` (stored as ``beta1``, ``beta2``).
      beta3: β3 in ``[0, 1)``, or None for ``√β2``.
      eps: ε ``>= 0``.
      estim_lr0: ``d_0 > 0``, an under-estimate.
      estim_lr_coef: c ``> 0``, a multiplier of the estimate.
      weight_decay: λ ``>= 0``, decoupled, scaled by ``d_t``.
      safeguard_warmup: leave γ out of ``s`` (the authors' fix for warm-ups).
      axis_name: the axis the leaves are split over, for the two reductions, or None.

    Returns:
      A ``GradientTransformation`` whose state is a ``ProdigyState``: the moments ``exp_avg`` and
      ``exp_avg_sq``, ``grad_sum``, the starting params ``params0``, the estimate ``estim_lr``
      (``d``), the scalar ``numerator_weighted``, the count and the hyperparameters.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.prodigy(estim_lr0=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # d_0 = 0.1: a visible step
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.8068, -1.9053]
    """
    name = "prodigy"
    check_betas(name, betas)
    if beta3 is not None:
        check_range(name, "beta3", beta3, 0, 1, high_open=True)
    check_common(name, learning_rate, eps, weight_decay, estim_lr0, axis_name)
    check_range(name, "estim_lr_coef", estim_lr_coef, 0, low_open=True)
    given = {} if beta3 is None else {"beta3": beta3}
    contract = Contract(name, {"learning_rate": learning_rate, "beta1": betas[0],
                               "beta2": betas[1], **given, "eps": eps, "estim_lr0": estim_lr0,
                               "estim_lr_coef": estim_lr_coef, "weight_decay": weight_decay},
                        counts=True, real_input=REAL_ONLY)

    def init(params):
        contract.check_params(params)
        dtype = scalar_dtype(params)
        hyperparams = contract.init_hyperparams()
        return ProdigyState(zero_statistics(params), zero_statistics(params),
                            zero_statistics(params),
                            jax.tree.map(lambda p: jnp.array(p, copy=True), params),
                            cast(hyperparams["estim_lr0"], dtype), jnp.zeros([], dtype),
                            contract.init_count(), hyperparams)

    def rule(g, p, m, v, s, p0, *, d, sum_rate, beta1, one_minus_beta1, beta2,
             one_minus_beta2, beta3, **unused):
        numerator = jnp.sum(g * (p0 - p))
        dg = d * g
        m = beta1 * m + one_minus_beta1 * dg
        v = beta2 * v + one_minus_beta2 * dg * dg
        s = beta3 * s + sum_rate * dg
        return (m, v, s), (numerator, jnp.sum(jnp.abs(s)))

    def final(p, m, v, *, dlr, new_d, eps, weight_decay, **unused):
        return -weight_decay * dlr * p - dlr * m / (jnp.sqrt(v) + new_d * eps)

    def update(updates, state, params=None, **extra):
        del extra
        step = contract.begin(updates, state, params, stat=state.exp_avg, needs_params=True)
        values = step.values
        dtype = state.estim_lr.dtype
        # d_0 follows estim_lr0 as it is at the first update (set_hyperparams before it acts).
        d = jnp.where(step.step == 1, cast(values["estim_lr0"], dtype), state.estim_lr)
        correction = step_correction(values, step.step)
        dlr = cast(d * values["learning_rate"] * correction, dtype)
        beta3 = values["beta3"] if "beta3" in values else jnp.sqrt(values["beta2"])
        d0 = values["estim_lr0"]
        sum_rate = (d if safeguard_warmup else dlr) / d0
        scalars = {"d": d, "dlr": dlr, "sum_rate": sum_rate,
                   **with_complements(values, "beta1", "beta2"), "beta3": beta3,
                   "eps": values["eps"], "weight_decay": values["weight_decay"]}
        (m, v, s), sums = leaf_statistics(
            rule, updates, params, (state.exp_avg, state.exp_avg_sq, state.grad_sum),
            ScalarsByDtype(scalars), axis_name, reads=(state.params0,))
        numerator, l1 = (cast(x, dtype) for x in sums)
        weighted = (cast(beta3, dtype) * state.numerator_weighted
                    + cast(d / d0 * dlr, dtype) * numerator)
        estimate = cast(values["estim_lr_coef"], dtype) * weighted / l1
        estim_lr = jnp.maximum(d, estimate)
        out = leaf_outputs(final, params, (m, v), ScalarsByDtype({**scalars, "new_d": estim_lr}))
        return out, ProdigyState(m, v, s, state.params0, estim_lr, weighted, step.count,
                                 step.stored)

    return GradientTransformation(
        init, update, name=name, state_type=ProdigyState,
        hyperparams=shown_with_axis_name(
            {"learning_rate": learning_rate, "betas": betas, "beta3": beta3, "eps": eps,
             "estim_lr0": estim_lr0, "estim_lr_coef": estim_lr_coef,
             "weight_decay": weight_decay, "safeguard_warmup": safeguard_warmup}, axis_name))
