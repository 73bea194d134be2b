"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner, with AdamW's weight decay."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.soap import scale_by_soap
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def soap(learning_rate: ScalarOrSchedule = 3e-3, b1: ScalarOrSchedule = 0.95,
         b2: ScalarOrSchedule = 0.95, shampoo_beta=None, eps: ScalarOrSchedule = 1e-8,
         weight_decay: ScalarOrSchedule = 0.01, mask=None, *,
         precondition_frequency: ScalarOrSchedule = 10, max_precond_dim: int = 10000,
         precondition_1d: bool = False, dtype=None) -> GradientTransformation:
    """SOAP (Vyas et al. 2024): ``θ -= γ_t · (SOAP(g) + λθ)``:
    ``chain(scale_by_soap(...), add_decayed_weights(λ), scale_by_learning_rate(γ))``.

    ``scale_by_soap`` gives the step direction (its docstring has the rule). Defaults are the
    authors' (``nikhilvyas/SOAP``). The decay is AdamW's decoupled form at every update; the
    authors' code makes no change at all at the first update (whose direction is zero here too)
    and decays ``θ ← (θ - γ u)(1 - γλ)`` after the step in its first release, ``θ(1 - γλ) - γu``
    in the current one (the form here). Their ``merge_dims`` and ``normalize_grads`` options are
    not provided.

    Args:
      learning_rate: γ ``>= 0``; a number, array or schedule.
      b1: β1 in ``[0, 1)`` (``scale_by_soap``).
      b2: β2 in ``[0, 1)`` (``scale_by_soap``).
      shampoo_beta: the factors' decay in ``[0, 1)``, None for ``b2`` (``scale_by_soap``).
      eps: ε ``>= 0`` on ``√v`` (``scale_by_soap``).
      weight_decay: λ ``>= 0``, decoupled.
      mask: which leaves decay (as in ``adamw``).
      precondition_frequency: refresh the eigenbases every this many updates.
      max_precond_dim: axes longer than this get no factor.
      precondition_1d: give 1-D leaves a factor.
      dtype: dtype of Adam's moments (``scale_by_soap``).

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.ones((2, 2))}
      >>> tx = gc.soap(0.1, weight_decay=0.0)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[1.0, 0.5], [0.0, 2.0]])}
      >>> updates, state = tx.update(grads, state, params)  # builds the eigenbases only
      >>> float(jnp.abs(updates["w"]).max())
      0.0
      >>> grads = {"w": jnp.array([[0.3, 0.7], [0.9, -0.4]])}  # not the one the bases came from
      >>> updates, state = tx.update(grads, state, params)
      >>> updates["w"].tolist()
      [[0.0539, -0.073], [-0.1059, 0.1434]]
    """
    return chain(
        scale_by_soap(b1, b2, shampoo_beta, eps, precondition_frequency=precondition_frequency,
                      max_precond_dim=max_precond_dim, precondition_1d=precondition_1d,
                      dtype=dtype),
        maybe_add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate))
