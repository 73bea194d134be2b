"""NAdam: Adam with Nesterov momentum."""

from __future__ import annotations

from gradchain.combinators.branch import divide_by_sqrt
from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.moments.nesterov import nesterov_first_moment
from gradchain.preconditioners.adam import second_moment
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def nadam(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
          eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0, mu_dtype=None, *,
          momentum_decay=None, weight_decay: ScalarOrSchedule = 0.0,
          decoupled_weight_decay: bool = False, nu_dtype=None) -> GradientTransformation:
    """NAdam (Dozat 2016): ``θ -= γ · n_t / (√v̂_t + ε)`` with ``n_t`` the Nesterov-corrected
    first moment of ``nesterov_first_moment``.

    ``chain(divide_by_sqrt(nesterov_first_moment(β1, momentum_decay=ψ), second_moment(β2),
    eps=ε, eps_root=ε_root), scale_by_learning_rate(γ))``. Arguments and defaults are Optax's
    ``nadam`` (constant momentum β1). ``torch.optim.NAdam`` is
    ``nadam(lr, β1, β2, ε, momentum_decay=0.004)`` (its defaults: lr 2e-3, ψ 4e-3); its
    ``weight_decay`` is L2 (added to the gradient first), or decoupled with
    ``decoupled_weight_decay=True`` (``θ -= γλθ``, torch's NAdamW form).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      b1: β1, decay of the first moment, in ``[0, 1)``.
      b2: β2, decay of the second moment, in ``[0, 1)``.
      eps: ε ``>= 0``, added to ``√v̂``.
      eps_root: ε added to ``v̂`` inside the root (Optax's; 0 by default).
      mu_dtype: dtype of the first moment (default: the params'); ``gc.quantized()`` for 8 bits.
      momentum_decay: ψ ``>= 0`` of torch's warming momentum, or None for a constant β1.
      weight_decay: λ ``>= 0``, L2 unless ``decoupled_weight_decay``.
      decoupled_weight_decay: decay decoupled from the gradient (``θ -= γλθ``).
      nu_dtype: dtype of the second moment (default: the params').

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.nadam(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.8526, -1.8526]
    """
    preconditioner = divide_by_sqrt(
        nesterov_first_moment(b1, momentum_decay=momentum_decay, dtype=mu_dtype),
        second_moment(b2, dtype=nu_dtype), eps=eps, eps_root=eps_root)
    decay = maybe_add_decayed_weights(weight_decay)
    return chain(identity() if decoupled_weight_decay else decay, preconditioner,
                 decay if decoupled_weight_decay else identity(),
                 scale_by_learning_rate(learning_rate))
