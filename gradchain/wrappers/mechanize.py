"""Mechanic (Cutkosky, Defazio & Mehta 2023): learn the scale of any optimizer's updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import scalar_dtype
from gradchain.core.hyperparams import ScalarsByDtype, cast, compute_dtype
from gradchain.core.public import public
from gradchain.core.reductions import check_axis_name, shown_with_axis_name, sum_over_devices
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_range, check_steps, check_transformations
from gradchain.kit.contract import Contract
from gradchain.step_size.dog import squared_norm
from gradchain.core.hyperparams import ScalarOrSchedule

NAME = "mechanize"


class MechanicState(NamedTuple):
    base_optimizer_state: Any
    count: jax.Array
    r: jax.Array
    m: jax.Array
    v: jax.Array
    s: jax.Array
    x0: Any
    hyperparams: dict


@public
def mechanize(base_optimizer, weight_decay: ScalarOrSchedule = 1e-2, eps: ScalarOrSchedule = 1e-8,
              s_init: ScalarOrSchedule = 1e-6, num_betas: int = 6, *,
              axis_name=None) -> GradientTransformation:
    """Mechanic (Cutkosky, Defazio & Mehta 2023): ``θ_t = θ_0 + (Σ_i s_i) · Δ_t``, where ``Δ_t``
    sums the updates of ``base_optimizer`` (any optimizer, with a learning rate of about 1 or
    a schedule peaking there) and the scales ``s_i`` are learnt online, one per β_i in
    ``1 - 10^-i``, ``i = 1..num_betas``.

    Each update, with ``g`` the gradient, ``u`` the base optimizer's update, ``S = Σ_i s_i``
    and ``θ_0`` the params at the first update::

        g̃ = g + λ S ‖g‖ / (‖θ‖ + ε) · θ,   δ = (θ_0 - θ) / (S + ε),   h = ⟨g̃, δ⟩
        m_i ← max(β_i m_i, |h| + ε),   v_i ← β_i² v_i + h²,   r_i ← β_i r_i + clip(h, ±m_i) s_i
        s_i ← (s_init / n · m_i + max(r_i, 0)) / (√v_i + ε)
        θ_new = θ_0 - (Σ_i s_i)(δ - u),   update = θ_new - θ

    (norms and the inner product over the whole tree). Optax's ``contrib.mechanize``: same
    arguments, defaults and numbers. Needs ``params``; real leaves only.

    Args:
      base_optimizer: any gradient transformation (gradchain's or Optax's).
      weight_decay: λ ``>= 0``, Mechanic's own decay (not the base optimizer's).
      eps: ε ``>= 0``.
      s_init: ``> 0``, the starting value of every ``s_i``.
      num_betas: n, an integer ``>= 1`` (fixed: it sets the state's shape).
      axis_name: the mesh or ``pmap`` axis the leaves are split over (norms and the inner
        product ``psum``-ed over it), or None.

    Returns:
      A ``GradientTransformation`` whose state is a ``MechanicState``: the base optimizer's state,
      the count, the per-β vectors ``r``, ``m``, ``v`` and ``s`` (``num_betas`` entries each),
      the starting params ``x0`` and the hyperparameters.
    """
    check_transformations(NAME, {"base_optimizer": base_optimizer})
    check_range(NAME, "weight_decay", weight_decay, 0)
    check_range(NAME, "eps", eps, 0)
    check_range(NAME, "s_init", s_init, 0, low_open=True)
    check_steps(NAME, "num_betas", num_betas, 1, what="betas")
    check_axis_name(NAME, axis_name)
    contract = Contract(NAME, {"weight_decay": weight_decay, "eps": eps, "s_init": s_init},
                        counts=True,
                        real_input="Mechanic's scales are learnt from real inner products")
    betas = [1.0 - 0.1 ** i for i in range(1, num_betas + 1)]

    def init(params):
        contract.check_params(params)
        dtype = scalar_dtype(params)
        hyperparams = contract.init_hyperparams()
        start = cast(hyperparams["s_init"], dtype)
        zeros = lambda: jnp.zeros([num_betas], dtype)  # noqa: E731 (separate buffers)
        return MechanicState(base_optimizer.init(params), contract.init_count(), zeros(),
                             zeros(), zeros(), jnp.full([num_betas], start, dtype),
                             jax.tree.map(lambda p: jnp.array(p, copy=True), params),
                             hyperparams)

    def update(updates, state, params=None, **extra):
        step = contract.begin(updates, state, params, stat=state.x0, needs_params=True)
        base_updates, base_state = call_update(base_optimizer, updates,
                                               state.base_optimizer_state, params, extra)
        values, dtype = step.values, state.s.dtype
        wd, eps, s_init = (cast(values[k], dtype) for k in ("weight_decay", "eps", "s_init"))
        first = state.count == 0
        x0 = jax.tree.map(lambda p, kept: jnp.where(first, p, kept), params, state.x0)
        s_sum = jnp.sum(state.s)
        grad_norm = cast(jnp.sqrt(squared_norm(updates, axis_name)), dtype)
        param_norm = cast(jnp.sqrt(squared_norm(params, axis_name)), dtype)
        scalars = ScalarsByDtype({"decay": wd * s_sum * grad_norm / (param_norm + eps),
                                  "shrink": s_sum + eps})

        def inner_product(g, p, start):
            work = compute_dtype(g.dtype, p.dtype, start.dtype)
            decay, shrink = scalars(work)["decay"], scalars(work)["shrink"]
            g, p, start = (x.astype(work) for x in (g, p, start))
            return jnp.vdot(g + decay * p, (start - p) / shrink)

        h = cast(sum_over_devices(jax.tree.leaves(jax.tree.map(inner_product, updates, params,
                                                               x0)), axis_name), dtype)
        beta = jnp.asarray(betas, dtype)
        m = jnp.maximum(beta * state.m, jnp.abs(h) + eps)
        v = beta ** 2 * state.v + h ** 2
        r = beta * state.r + jnp.clip(h, -state.m, state.m) * state.s
        s = (s_init / num_betas * m + jnp.maximum(r, 0)) / (jnp.sqrt(v) + eps)
        # θ_new - θ = (1 - S'/(S + ε)) (θ_0 - θ) + S' u, with S' = Σ s_new: the formula above
        # without a difference of two params-sized numbers.
        total = jnp.sum(s)
        factors = ScalarsByDtype({"total": total, "keep": 1 - total / (s_sum + eps)})

        def leaf(p, start, u):
            work = compute_dtype(p.dtype, start.dtype, u.dtype)
            k = factors(work)
            out = k["keep"] * (start.astype(work) - p.astype(work)) + k["total"] * u.astype(work)
            return cast(out, p.dtype)

        new_updates = jax.tree.map(leaf, params, x0, base_updates)
        return new_updates, MechanicState(base_state, step.count, r, m, v, s, x0, step.stored)

    return GradientTransformation(
        init, update, name=NAME, children=[base_optimizer],
        parts=[(("base_optimizer_state",), base_optimizer)], state_type=MechanicState,
        hyperparams=shown_with_axis_name({"weight_decay": weight_decay, "eps": eps,
                                          "s_init": s_init, "num_betas": num_betas}, axis_name))
