"""NAdam's Nesterov-accelerated first moment (Dozat 2016)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core import quantized
from gradchain.core.hyperparams import (Hyperparams, ScalarsByDtype, as_hyperparam_array, cast,
                                        compute_dtype, next_count, state_names, zero_count)
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import (check_floating, check_floating_dtype, check_range,
                                       check_same_shapes, check_same_structure)

NAME = "nesterov_first_moment"


class NesterovMomentState(NamedTuple):
    count: jax.Array
    ema: object
    momentum_product: jax.Array
    hyperparams: dict


@public
def nesterov_first_moment(b1=0.9, *, momentum_decay=None, dtype=None,
                          hyperparam_name=None) -> GradientTransformation:
    """Nesterov's look-ahead applied to Adam's first moment (Dozat 2016, NAdam).

    With ``m_t = β1 m_{t-1} + (1 - β1) g_t`` (``m_0 = 0``), ``μ_t`` the momentum of step ``t``
    (from 1) and ``Π_t = μ_1 ⋯ μ_t``, the output is::

        (1 - μ_t) / (1 - Π_t) · g_t  +  μ_{t+1} / (1 - Π_t μ_{t+1}) · m_t

    - ``momentum_decay=None``: ``μ_t = β1``, so ``(1 - β1)/(1 - β1^t) · g + β1/(1 - β1^{t+1}) · m``:
      Optax's ``nadam`` (``scale_by_adam(nesterov=True)``).
    - ``momentum_decay=ψ``: ``μ_t = β1 (1 - ½ · 0.96^{tψ})``, Dozat's warming momentum schedule
      as ``torch.optim.NAdam`` has it (ψ = 0.004 there), whose effective momentum starts near
      ``β1/2``. The moving average ``m`` keeps the constant ``β1`` (as torch).

    ``Π_t`` is a running product kept in the state (``momentum_product``, in the hyperparameters'
    dtype), so a ``b1`` changed at run time acts from then on, as in torch. Divide by the root
    of ``second_moment(b2)`` for NAdam's step.

    Args:
      b1: β1 in ``[0, 1)``; a number, array or schedule.
      momentum_decay: ψ ``>= 0``, or None for a constant ``μ_t = β1``.
      dtype: dtype of ``m`` (default: the params' dtype; for complex params its precision,
        see ``core.dtypes.statistic_dtype``).
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).
    """
    names = state_names(NAME, hyperparam_name, ("b1", "momentum_decay"))
    check_range(NAME, names["b1"], b1, 0, 1, high_open=True)
    if momentum_decay is not None:
        check_range(NAME, names["momentum_decay"], momentum_decay, 0)
    check_floating_dtype(NAME, "dtype", dtype)
    dtype = quantized.state_dtype(dtype)
    hyper = (Hyperparams(names, b1=b1) if momentum_decay is None
             else Hyperparams(names, b1=b1, momentum_decay=momentum_decay))

    def momentum(t, b1, momentum_decay=None):
        if momentum_decay is None:
            return b1
        return b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))

    def init(params):
        check_floating(NAME, params)
        ema = quantized.init_stats(_zeros, params, dtype, owner=NAME)
        return NesterovMomentState(zero_count(), ema, as_hyperparam_array(1.0), hyper.init())

    def update(updates, state, params=None, **extra):
        del params, extra
        check_floating(NAME, updates, "updates")
        codes = quantized.codes_view(state.ema)
        check_same_structure(NAME, updates, codes)
        check_same_shapes(NAME, updates, codes)
        values, stored = hyper.read(state.hyperparams, state.count)
        t = next_count(state.count)
        mu, mu_next = momentum(t, **values), momentum(t + 1, **values)
        product = state.momentum_product * mu
        scalars = ScalarsByDtype({
            "b1": values["b1"], "weight": 1 - values["b1"],
            "gradient_coefficient": (1 - mu) / (1 - product),
            "moment_coefficient": mu_next / (1 - product * mu_next)})

        def leaf(g, kept):
            m = quantized.load(kept, dtype)
            s = scalars(compute_dtype(g.dtype, m.dtype))
            new_m = s["b1"] * m + s["weight"] * g
            out = s["gradient_coefficient"] * g + s["moment_coefficient"] * new_m
            return cast(out, g.dtype), quantized.save(new_m, kept, dtype)

        leaves, treedef = jax.tree.flatten(updates)
        pairs = [leaf(g, m) for g, m in zip(leaves, treedef.flatten_up_to(state.ema))]
        new_updates = treedef.unflatten([out for out, _ in pairs])
        new_ema = treedef.unflatten([m for _, m in pairs])
        return new_updates, NesterovMomentState(t, new_ema, product, stored)

    return GradientTransformation(init, update, name=NAME, hyperparams=hyper.specs,
                                  state_type=NesterovMomentState)


def _zeros(param, dtype):
    return jnp.zeros(jnp.shape(param), dtype)
