"""AdaBelief's preconditioner: Adam's step over the spread of the gradient around its mean."""

from __future__ import annotations

import jax.numpy as jnp

from gradchain.combinators.branch import branch
from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.shared import share, shared
from gradchain.moments.belief import belief_second_moment
from gradchain.moments.bias_correction import bias_correction
from gradchain.moments.ema import ema
from gradchain.moments.nesterov_look_ahead import nesterov_look_ahead
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

MEAN = "adabelief_mu"


def _step(mean, numerator, spread, eps):
    del mean  # shared with both other branches, which read it
    # max(scale, tiny): 0/0 is 0, as in divide_by_sqrt
    scale = jnp.sqrt(spread) + eps
    return numerator / jnp.maximum(scale, jnp.finfo(scale.dtype).tiny)


@public
def scale_by_belief(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
                    eps: ScalarOrSchedule = 1e-16, eps_root: ScalarOrSchedule = 1e-16, *,
                    nesterov: bool = False) -> GradientTransformation:
    """``out = m̂_t / (√ŝ_t + ε)`` (Zhuang et al. 2020, "AdaBelief Optimizer") with::

        m_t = β1 m_{t-1} + (1 - β1) g_t                        m̂_t = m_t / (1 - β1^t)
        s_t = β2 s_{t-1} + (1 - β2) |g_t - m_t|² + eps_root    ŝ_t = s_t / (1 - β2^t)

    ``m`` is computed once and shared (``share``) by the numerator and ``s``; the state holds
    ``m`` and ``s`` once each, as Optax's. ``nesterov=True`` replaces ``m̂_t`` by
    ``nesterov_look_ahead(β1)``. Arguments, defaults and numbers are Optax's
    ``scale_by_belief``.

    Args:
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      eps: ε ``>= 0``, added after the root.
      eps_root: ``>= 0``, added to ``s`` at every step.
      nesterov: Nesterov's look-ahead on the first moment.

    Returns:
      A ``GradientTransformation`` whose state is a ``BranchState``: the shared ``EmaState`` of
      ``m``, the numerator's bias correction and the ``BeliefMomentState`` of ``s`` with its own;
      ``eps`` in its ``hyperparams``.
    """
    check_range("scale_by_belief", "b1", b1, 0, 1, high_open=True)
    check_range("scale_by_belief", "eps", eps, 0)
    mean = share(MEAN, ema(b1, hyperparam_name="b1"))
    numerator = (nesterov_look_ahead(b1, moment=MEAN) if nesterov
                 else chain(shared(MEAN), bias_correction(b1, hyperparam_name="b1")))
    spread = chain(belief_second_moment(b2, eps_root, mean=MEAN),
                   bias_correction(b2, hyperparam_name="b2"))
    return branch(mean, numerator, spread, combine=_step, name="scale_by_belief", eps=eps)
