"""NAdam's Nesterov-accelerated first moment (Dozat 2016)."""

from __future__ import annotations

from typing import NamedTuple

import jax

from gradchain.core.hyperparams import state_names
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation
from gradchain.core.validation import check_range
from gradchain.kit.rules import elementwise
from gradchain.core.hyperparams import ScalarOrSchedule

NAME = "nesterov_first_moment"


class NesterovMomentState(NamedTuple):
    count: jax.Array
    ema: object
    momentum_product: jax.Array
    hyperparams: dict


@public
def nesterov_first_moment(b1: ScalarOrSchedule = 0.9, *, momentum_decay=None, dtype=None,
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

    Returns:
      A ``GradientTransformation`` whose state is ``NesterovMomentState``: ``count``, ``ema`` (``m``, params-shaped), ``momentum_product`` (``Π_t``) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    names = state_names(NAME, hyperparam_name, ("b1", "momentum_decay"))
    check_range(NAME, names["b1"], b1, 0, 1, high_open=True)
    hyperparams = {"b1": b1}
    if momentum_decay is not None:
        check_range(NAME, names["momentum_decay"], momentum_decay, 0)
        hyperparams["momentum_decay"] = momentum_decay

    def momentum(t, b1, momentum_decay=None):
        if momentum_decay is None:
            return b1
        return b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))

    def coefficients(step, momentum_product, b1, momentum_decay=None):
        mu, mu_next = momentum(step, b1, momentum_decay), momentum(step + 1, b1, momentum_decay)
        product = momentum_product * mu
        return {"momentum_product": product, "weight": 1 - b1,
                "gradient_coefficient": (1 - mu) / (1 - product),
                "moment_coefficient": mu_next / (1 - product * mu_next)}

    def rule(g, stat, b1, weight, gradient_coefficient, moment_coefficient):
        new_m = b1 * stat + weight * g
        return gradient_coefficient * g + moment_coefficient * new_m, new_m

    return elementwise(rule, name=NAME, hyperparams=hyperparams, statistic=0.0,
                       scalars=coefficients, carry={"momentum_product": 1.0}, dtype=dtype,
                       state_type=NesterovMomentState,
                       hyperparam_name={k: names[k] for k in hyperparams})
