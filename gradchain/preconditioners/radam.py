"""RAdam's variance rectification of Adam's adaptive step size (Liu et al. 2020)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.combinators.chain import chain
from gradchain.core.dtypes import SECOND_MOMENT_INPUT
from gradchain.core.elementwise import elementwise_transformation
from gradchain.core.hyperparams import Hyperparams, next_count, state_names
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.moments.ema import ema
from gradchain.moments.nesterov import nesterov_first_moment
from gradchain.moments.square import square
from gradchain.preconditioners.adam import first_moment, second_moment
from gradchain.step_size.per_parameter import per_parameter_step
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "rectified_step_size"


class RectifiedStepSizeState(NamedTuple):
    count: jax.Array
    hyperparams: dict


@public
def rectified_step_size(b2: ScalarOrSchedule = 0.999, threshold: ScalarOrSchedule = 5.0,
                        eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0, *,
                        raw_v: bool = False, degenerate_to_sgd: bool = True,
                        hyperparam_name=None) -> GradientTransformation:
    """Map a second moment ``v`` to RAdam's rectified step size ``r_t / (√(v + ε_root) + ε)``,
    or to 1 while the variance of that step size is intractable.

    With ``ρ∞ = 2/(1 - β2) - 1`` and ``ρ_t = ρ∞ - 2tβ2^t/(1 - β2^t)`` (``t`` from 1): if
    ``ρ_t >= threshold``, ``r_t = √((ρ_t - 4)(ρ_t - 2)ρ∞ / ((ρ∞ - 4)(ρ∞ - 2)ρ_t))`` and the
    output is ``r_t / (√(v̂ + ε_root) + ε)``; otherwise 1 (momentum SGD), or 0 with
    ``degenerate_to_sgd=False`` (no step, the authors' code's other option).

    Conventions: Optax rectifies for ``ρ_t >= 5`` (``threshold=5``, the default), torch for
    ``ρ_t > 5``, the paper for ``ρ_t > 4``: they differ only if ``ρ_t`` hits the threshold
    exactly (for β2 = 0.999, ``ρ_5 ≈ 4.996``: rectification starts at step 6 for torch and
    Optax, step 5 for the paper's threshold 4). ε: Optax adds it to the root of the corrected
    ``v̂`` (give ``v̂``, ``raw_v=False``); ``torch.optim.RAdam`` adds it to the root of the raw
    ``v`` and multiplies by ``√(1 - β2^t)`` (give the raw ``v``, ``raw_v=True``).

    Args:
      b2: β2 of the second moment, in ``[0, 1)``.
      threshold: rectify when ``ρ_t >= threshold``; ``>= 4`` (``r_t`` is real only there).
      eps: ε ``>= 0`` outside the root.
      eps_root: ``>= 0`` inside the root.
      raw_v: the input is the raw ``v`` (torch's ε convention) instead of ``v̂``.
      degenerate_to_sgd: below the threshold, output 1 (True) or 0 (False).
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``);
        keep ``b2`` under the name of the second moment's decay, so the two are tied.

    Returns:
      A ``GradientTransformation`` whose state is ``RectifiedStepSizeState``: ``count`` (the ``t`` of ``ρ_t``) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    names = state_names(NAME, hyperparam_name, ("b2", "threshold", "eps", "eps_root"))
    check_range(NAME, names["b2"], b2, 0, 1, high_open=True)
    check_range(NAME, names["threshold"], threshold, 4)
    check_range(NAME, names["eps"], eps, 0)
    check_range(NAME, names["eps_root"], eps_root, 0)
    below = 1.0 if degenerate_to_sgd else 0.0

    def prepare(count, b2, threshold, eps, eps_root):
        t = next_count(count)
        rho_inf = 2 / (1 - b2) - 1
        b2_t = b2 ** t
        rho = rho_inf - 2 * t * b2_t / (1 - b2_t)
        rectify = rho >= threshold
        safe_rho = jnp.where(rectify, rho, rho_inf)
        r = jnp.sqrt((safe_rho - 4) * (safe_rho - 2) * rho_inf
                     / ((rho_inf - 4) * (rho_inf - 2) * safe_rho))
        if raw_v:
            r = r * jnp.sqrt(1 - b2_t)
        return {"rectify": rectify, "r": r, "eps": eps, "eps_root": eps_root}

    def leaf(v, s, p, rectify, r, eps, eps_root):
        return jnp.where(rectify, r / (jnp.sqrt(v + eps_root) + eps), below), None

    return elementwise_transformation(
        NAME, RectifiedStepSizeState, leaf,
        Hyperparams(names, b2=b2, threshold=threshold, eps=eps, eps_root=eps_root),
        prepare=prepare, uses_count=True, real_input=SECOND_MOMENT_INPUT,
        display={names["b2"]: b2, names["threshold"]: threshold, names["eps"]: eps,
                 names["eps_root"]: eps_root, "raw_v": raw_v,
                 "degenerate_to_sgd": degenerate_to_sgd})


@public
def scale_by_radam(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
                   eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0,
                   threshold: ScalarOrSchedule = 5.0, *, nesterov: bool = False,
                   raw_v: bool = False, degenerate_to_sgd: bool = True, mu_dtype=None,
                   nu_dtype=None) -> GradientTransformation:
    """RAdam's step ``r_t · m̂_t / (√v̂_t + ε)``, or ``m̂_t`` before rectification starts.

    ``per_parameter_step(first_moment(β1), chain(second_moment(β2),
    rectified_step_size(β2, threshold, ε, ε_root)))``. ``nesterov=True`` takes
    ``nesterov_first_moment(β1)`` as the direction (Optax's option); ``raw_v=True`` feeds the raw
    ``v`` (torch's ε convention, see ``rectified_step_size``).

    Args:
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      eps: ε ``>= 0``.
      eps_root: ``>= 0``, inside the root.
      threshold: rectify when ``ρ_t >= threshold`` (``>= 4``).
      nesterov: NAdam's Nesterov first moment as the direction.
      raw_v: feed the raw ``v`` (torch's ε convention).
      degenerate_to_sgd: below the threshold, step with ``m̂`` (True) or not at all.
      mu_dtype: dtype of ``m`` (default: the params').
      nu_dtype: dtype of ``v`` (default: the params' real dtype).

    Returns:
      A ``GradientTransformation``; its state is a ``BranchState`` holding the first moment's,
      the second moment's and the ``RectifiedStepSizeState``.
    """
    direction = (nesterov_first_moment(b1, dtype=mu_dtype) if nesterov
                 else first_moment(b1, dtype=mu_dtype))
    moment = (chain(square(dtype=nu_dtype),
                    ema(b2, dtype=nu_dtype, hyperparam_name="b2", real=True))
              if raw_v else second_moment(b2, dtype=nu_dtype))
    return per_parameter_step(
        direction,
        chain(moment, rectified_step_size(b2, threshold, eps, eps_root, raw_v=raw_v,
                                          degenerate_to_sgd=degenerate_to_sgd)))
