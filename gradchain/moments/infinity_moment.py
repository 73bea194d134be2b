"""AdaMax's exponentially weighted infinity norm of the gradient."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import elementwise
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "infinity_moment"


class InfinityMomentState(NamedTuple):
    count: jax.Array
    nu: object
    hyperparams: dict


@public
def infinity_moment(b2: ScalarOrSchedule = 0.999, eps: ScalarOrSchedule = 1e-8, *,
                    dtype=None) -> GradientTransformation:
    """``v_t = max(|g_t| + ε, β2 · v_{t-1})``, ``v_0 = 0``; outputs ``v_t`` (Kingma & Ba 2015,
    AdaMax, section 7.1: Adam's second moment in the limit ``p -> ∞``, which needs no bias
    correction). ε inside the maximum is Optax's (``optax.tree.update_infinity_moment``).

    ``v`` is real (for complex params, ``|g|`` in their real dtype).

    Args:
      b2: β2 in ``[0, 1]``, the decay of the maximum (a number, array or schedule).
      eps: ε ``>= 0``, added to ``|g|``.
      dtype: dtype of ``v`` (default: the params').

    Returns:
      A ``GradientTransformation`` whose state is an ``InfinityMomentState`` (``count``, ``v`` as
      ``nu``, ``hyperparams`` with ``b2`` and ``eps``); it outputs ``v_t``.
    """
    check_range(NAME, "b2", b2, 0, 1)
    check_range(NAME, "eps", eps, 0)

    def rule(u, stat, b2, eps):
        new = jnp.maximum(jnp.abs(u) + eps, b2 * stat)
        return new, new

    return elementwise(rule, name=NAME, hyperparams={"b2": b2, "eps": eps}, statistic=0.0,
                       dtype=dtype, output_dtype="statistic", real_statistic=True,
                       state_type=InfinityMomentState)
