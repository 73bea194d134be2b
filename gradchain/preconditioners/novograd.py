"""NovoGrad's preconditioner: each leaf divided by the root of an EMA of its squared norm."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradchain.combinators.chain import chain
from gradchain.core.dtypes import abs_sq
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import per_leaf
from gradchain.moments.momentum_sum import momentum_sum
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


class LayerRmsState(NamedTuple):
    count: jax.Array
    nu: object
    hyperparams: dict


@public
def scale_by_layer_rms(b2: ScalarOrSchedule = 0.25, eps: ScalarOrSchedule = 1e-8,
                       eps_root: ScalarOrSchedule = 0.0) -> GradientTransformation:
    """``u / (√(v_t + eps_root) + ε)`` per leaf, ``v_t`` an EMA of the leaf's squared norm.

    ``v_1 = ‖u_1‖²``, ``v_t = β2 v_{t-1} + (1 - β2) ‖u_t‖²``: one scalar per leaf (a layer),
    NovoGrad's second moment (Ginsburg et al. 2019). ``‖u‖²`` is ``Σ |u|²`` for complex leaves.

    Args:
      b2: β2 in ``[0, 1]``; a number, array or schedule.
      eps: ε ``>= 0``, added to the root.
      eps_root: ``>= 0``, added under the root.

    Returns:
      A ``GradientTransformation``; its state is ``LayerRmsState(count, nu, hyperparams)``
      (one scalar ``nu`` per leaf).
    """
    check_range("scale_by_layer_rms", "b2", b2, 0, 1)
    check_range("scale_by_layer_rms", "eps", eps, 0)
    check_range("scale_by_layer_rms", "eps_root", eps_root, 0)

    def rule(u, stat, step, b2, eps, eps_root):
        norm_sq = jnp.sum(abs_sq(u))
        nu = jnp.where(step == 1, norm_sq, (1 - b2) * norm_sq + b2 * stat)
        return u / (jnp.sqrt(nu + eps_root) + eps), nu

    return per_leaf(
        rule, name="scale_by_layer_rms", hyperparams={"b2": b2, "eps": eps, "eps_root": eps_root},
        statistic=lambda param, dtype: jnp.zeros((), dtype), real_statistic=True,
        state_type=LayerRmsState)


@public
def scale_by_novograd(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.25,
                      eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0,
                      weight_decay: ScalarOrSchedule = 0.0,
                      mu_dtype=None) -> GradientTransformation:
    """NovoGrad (Ginsburg et al. 2019): ``m_t = β1 m_{t-1} + g_t / (√(v_t + eps_root) + ε) + λθ``.

    ``chain(scale_by_layer_rms(β2, ε, eps_root), add_decayed_weights(λ), momentum_sum(β1))``.
    Optax's ``scale_by_novograd``: arguments, defaults and numbers.

    Args:
      b1: β1 in ``[0, 1]``.
      b2: β2 in ``[0, 1]``.
      eps: ε ``>= 0``.
      eps_root: ``>= 0``.
      weight_decay: λ ``>= 0``, added to the normalised gradient.
      mu_dtype: dtype of ``m`` (default: the params').

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts'
      states).
    """
    return chain(scale_by_layer_rms(b2, eps, eps_root), maybe_add_decayed_weights(weight_decay),
                 momentum_sum(b1, dtype=mu_dtype, hyperparam_name="b1"))
