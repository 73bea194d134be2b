"""AdaBound's bounds on the per-parameter step size (Luo et al. 2019)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import SECOND_MOMENT_INPUT
from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, next_count, state_names
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.moments.folded_bias_correction import folded_factor
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "clip_lr"


class ClipLrState(NamedTuple):
    count: jax.Array
    hyperparams: dict


@public
def clip_lr(final_lr: ScalarOrSchedule = 0.1, base_learning_rate: ScalarOrSchedule = 1e-3,
            gamma: ScalarOrSchedule = 1e-3, eps: ScalarOrSchedule = 1e-8, *, b1=None, b2=None,
            hyperparam_name=None) -> GradientTransformation:
    """Map a second moment ``v`` to AdaBound's clipped step size, in units of the learning rate.

    ``η_t = c_t / (√v + ε)`` clipped into ``[ρ (1 - 1/(γt + 1)), ρ (1 + 1/(γt))]``, with
    ``ρ = final_lr / base_learning_rate``, ``t`` counted from 1 and
    ``c_t = √(1 - β2^t) / (1 - β1^t)`` (``folded_factor``, 1 for an omitted β; Adam's
    corrections folded into the step size as in the authors' code). Both bounds tend to ``ρ``, so the step
    ``γ_t · clip(η_t) · m`` moves from Adam's towards SGD's with rate ``final_lr``.

    The output multiplies a direction in ``per_parameter_step`` and the learning rate is applied
    after it (``scale_by_learning_rate``). Scaling a clipped value by ``γ_t > 0`` is clipping
    ``γ_t η_t`` into ``γ_t``-scaled bounds, so this is exactly the authors' code
    (``Luolc/AdaBound``), where the bounds converge to ``final_lr · γ_t / γ_0``: they follow a
    changed or scheduled learning rate. ``base_learning_rate`` is that ``γ_0``, the rate
    ``final_lr`` is quoted for (the peak rate of a warm-up).

    Put ``max_v()`` in front for AMSBound (the authors take the maximum of the raw ``v``). The
    paper (§4) writes the bounds with bias-corrected moments outside the clip and an extra
    ``1/√t``; the authors' code, followed here, has neither.

    Args:
      final_lr: the SGD rate the bounds converge to, ``> 0``.
      base_learning_rate: the learning rate ``final_lr`` is relative to, ``> 0``.
      gamma: γ ``> 0``, how fast the bounds close (about ``1/γ`` steps).
      eps: ε ``>= 0``, added to ``√v``.
      b1: β1 of the first moment, for the folded bias correction; None for none.
      b2: β2 of the second moment, likewise. Keep both under the names of the moments'
        decays (the default ``b1``, ``b2``), so that each is one tied hyperparameter.
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``ClipLrState``: ``count`` (the ``t`` of the bounds) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    names = state_names(NAME, hyperparam_name,
                        ("final_lr", "base_learning_rate", "gamma", "eps", "b1", "b2"))
    check_range(NAME, names["final_lr"], final_lr, 0, low_open=True)
    check_range(NAME, names["base_learning_rate"], base_learning_rate, 0, low_open=True)
    check_range(NAME, names["gamma"], gamma, 0, low_open=True)
    check_range(NAME, names["eps"], eps, 0)
    hyper = {"final_lr": final_lr, "base_learning_rate": base_learning_rate, "gamma": gamma,
             "eps": eps}
    for name, beta in (("b1", b1), ("b2", b2)):
        if beta is not None:
            check_range(NAME, names[name], beta, 0, 1, high_open=True)
            hyper[name] = beta

    def prepare(count, final_lr, base_learning_rate, gamma, eps, b1=None, b2=None):
        t = next_count(count)
        ratio = final_lr / base_learning_rate
        return {"factor": folded_factor(t, b1, b2), "eps": eps,
                "lower": ratio * (1 - 1 / (gamma * t + 1)),
                "upper": ratio * (1 + 1 / (gamma * t))}

    def leaf(v, s, p, factor, eps, lower, upper):
        return jnp.clip(factor / (jnp.sqrt(v) + eps), lower, upper), None

    return elementwise_transformation(NAME, ClipLrState, leaf, Hyperparams(names, **hyper),
                                      prepare=prepare, uses_count=True,
                                      real_input=f"clipping compares values; {SECOND_MOMENT_INPUT}")
