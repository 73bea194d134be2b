"""Adam's two bias corrections folded into one step-size factor."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, next_count, state_names
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


class FoldedBiasCorrectionState(NamedTuple):
    count: jax.Array
    hyperparams: dict


@public
def folded_bias_correction(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999, *,
                           hyperparam_name=None) -> GradientTransformation:
    """``u -> √(1 - β2^t) / (1 - β1^t) · u``, ``t`` counted from 1 at the first update.

    The form of Adam that Kingma & Ba (2015, end of §2) give for efficiency: both bias
    corrections are folded into the step size, ``α_t = α · √(1 - β2^t) / (1 - β1^t)``, and ε is
    added to the root of the *raw* second moment. Placed after
    ``divide_by_sqrt(ema(β1), chain(square(), ema(β2)), eps=ε)`` it gives
    ``√(1 - β2^t)/(1 - β1^t) · m_t / (√v_t + ε)``, the step of SWATS (Keskar & Socher 2017) and of
    ``torch.optim.RAdam``; it differs from ``scale_by_adam``'s ``m̂ / (√v̂ + ε)`` only in where ε
    acts (ε here equals ``ε / √(1 - β2^t)`` there).

    Give it the same ``b1``, ``b2`` as the moments it corrects, under the same names
    (``hyperparam_name``, ``{argument: key}``; by default ``b1`` and ``b2``), so that each pair
    is one tied hyperparameter.

    Args:
      b1: β1 in ``[0, 1)`` of the first moment.
      b2: β2 in ``[0, 1)`` of the second moment.
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``FoldedBiasCorrectionState``: ``count`` and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    names = state_names("folded_bias_correction", hyperparam_name, ("b1", "b2"))
    check_range("folded_bias_correction", names["b1"], b1, 0, 1, high_open=True)
    check_range("folded_bias_correction", names["b2"], b2, 0, 1, high_open=True)

    return elementwise_transformation(
        "folded_bias_correction", FoldedBiasCorrectionState,
        lambda u, s, p, factor: (u * factor, None),
        Hyperparams(names, b1=b1, b2=b2),
        prepare=lambda count, b1, b2: {"factor": folded_factor(next_count(count), b1, b2)},
        uses_count=True)


def folded_factor(t, b1=None, b2=None):
    """``√(1 - β2^t) / (1 - β1^t)`` at step ``t`` (from 1); an omitted β contributes 1."""
    factor = 1.0
    if b2 is not None:
        factor = jnp.sqrt(1 - b2 ** t)
    if b1 is not None:
        factor = factor / (1 - b1 ** t)
    return factor
