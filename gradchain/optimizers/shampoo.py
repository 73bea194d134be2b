"""Shampoo with grafting, momentum and weight decay."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.moments.momentum import scale_by_momentum
from gradchain.optimizers.sgd import check_momentum_options
from gradchain.preconditioners.shampoo import scale_by_shampoo
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def shampoo(learning_rate: ScalarOrSchedule, momentum: ScalarOrSchedule = 0.9,
            b2: ScalarOrSchedule = 1.0, eps: ScalarOrSchedule = 1e-6,
            weight_decay: ScalarOrSchedule = 0.0, *, nesterov: bool = False,
            precondition_frequency: ScalarOrSchedule = 1, max_precond_dim: int = 10000,
            precondition_1d: bool = False, graft="adagrad", graft_eps: ScalarOrSchedule = 1e-10,
            dtype=None) -> GradientTransformation:
    """Shampoo (Gupta, Koren & Singer 2018) with grafting: the grafted direction ``S`` of
    ``scale_by_shampoo``, plus ``λθ``, through a momentum buffer, times the rate:
    ``chain(scale_by_shampoo(...), add_decayed_weights(λ), scale_by_momentum(μ),
    scale_by_learning_rate(γ))``, so ``b ← μ b + S + λθ; θ -= γ b`` (the order of Anil et al.
    2020's distributed Shampoo). ``momentum=None``, ``graft=None`` and ``b2=1`` give the
    paper's algorithm.

    Args:
      learning_rate: γ ``>= 0``; a number, array or schedule.
      momentum: μ in ``[0, 1]`` (``scale_by_momentum``'s heavy ball), or None for no buffer.
      b2: β2 in ``[0, 1]``: 1 sums the factors' statistics, below 1 averages them.
      eps: ε > 0, added to each factor before its root.
      weight_decay: λ ``>= 0``, added to the preconditioned step (before the momentum).
      nesterov: Nesterov momentum.
      precondition_frequency: recompute the roots every this many updates.
      max_precond_dim: axes longer than this get no factor.
      precondition_1d: give 1-D leaves a factor.
      graft: ``"adagrad"``, ``"sgd"`` or None (``scale_by_shampoo``).
      graft_eps: ε of the Adagrad graft.
      dtype: dtype of the factors, roots and graft sums (``scale_by_shampoo``).

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.ones((2, 2))}
      >>> tx = gc.shampoo(0.1)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[1.0, 0.5], [0.0, 2.0]])}
      >>> updates, state = tx.update(grads, state, params)
      >>> [round(x, 4) for x in updates["w"].ravel().tolist()]
      [-0.1208, -0.0201, 0.0201, -0.1208]
    """
    check_momentum_options(momentum, nesterov, 0.0)
    return chain(
        scale_by_shampoo(b2, eps, precondition_frequency=precondition_frequency,
                         max_precond_dim=max_precond_dim, precondition_1d=precondition_1d,
                         graft=graft, graft_eps=graft_eps, dtype=dtype),
        maybe_add_decayed_weights(weight_decay),
        identity() if momentum is None else scale_by_momentum(momentum, nesterov=nesterov),
        scale_by_learning_rate(learning_rate))
