"""AMSGrad's running maximum of the second moment."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import SECOND_MOMENT_INPUT
from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation


class MaxVState(NamedTuple):
    count: jax.Array
    max: object
    hyperparams: dict


@public
def max_v(*, dtype=None) -> GradientTransformation:
    """Running elementwise maximum ``v_max,t = max(v_max,t-1, v_t)``, ``v_max,0 = 0``.

    Where it sits in the second-moment chain is the convention (Reddi et al. 2018, AMSGrad):
    after ``bias_correction`` it is Optax's ``amsgrad`` (max of v̂); before it, torch's
    ``Adam(amsgrad=True)`` (max of raw v, divided by the current ``1 - β2^t``).

    ``v`` is real (a second moment, also for complex params: ``|g|²``, kept in their real
    dtype); complex updates are refused, since complex numbers have no order.

    Args:
      dtype: dtype of ``v_max`` (default: the params' real dtype).

    Returns:
      A ``GradientTransformation`` whose state is ``MaxVState``: ``count``, ``max`` (``v_max``, params-shaped) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    return elementwise_transformation(
        "max_v", MaxVState,
        lambda v, m, p: (jnp.maximum(m, v), jnp.maximum(m, v)),
        stat_init=lambda p, dt: jnp.zeros(jnp.shape(p), dt),
        dtype=dtype, output="stat", real_statistic=True,
        real_input=f"a maximum compares values; {SECOND_MOMENT_INPUT}")
