"""RAdam: Adam with a rectified adaptive learning rate."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.preconditioners.radam import scale_by_radam
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def radam(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
          eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0,
          threshold: ScalarOrSchedule = 5.0, *, nesterov: bool = False, raw_v: bool = False,
          degenerate_to_sgd: bool = True, weight_decay: ScalarOrSchedule = 0.0,
          decoupled_weight_decay: bool = False) -> GradientTransformation:
    """RAdam (Liu et al. ICLR 2020): ``θ -= γ · r_t · m̂ / (√v̂ + ε)`` once the variance of the
    adaptive rate is tractable (``ρ_t >= threshold``), ``θ -= γ · m̂`` before.

    ``chain(scale_by_radam(β1, β2, ε, ε_root, threshold), scale_by_learning_rate(γ))``; the
    rectification is ``rectified_step_size``. Arguments, defaults and numbers are Optax's
    ``radam``. ``torch.optim.RAdam`` is ``radam(lr, β1, β2, ε, raw_v=True)`` (ε on the root of
    the raw ``v``), its ``weight_decay`` L2 or, with ``decoupled_weight_decay=True``, decoupled
    (``θ -= γλθ``). The authors' default of taking no step below the threshold is
    ``degenerate_to_sgd=False``.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      eps: ε ``>= 0``.
      eps_root: ε inside the root.
      threshold: the rectification threshold ``>= 4`` on ``ρ_t``.
      nesterov: use NAdam's Nesterov first moment.
      raw_v: ε on the root of the raw ``v`` (torch) instead of ``v̂`` (Optax).
      degenerate_to_sgd: below the threshold, step with momentum SGD (True) or not at all.
      weight_decay: λ ``>= 0``, L2 unless ``decoupled_weight_decay``.
      decoupled_weight_decay: decay decoupled from the gradient (``θ -= γλθ``).

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.radam(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.95, -1.95]
    """
    decay = maybe_add_decayed_weights(weight_decay)
    return chain(
        identity() if decoupled_weight_decay else decay,
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov, raw_v=raw_v,
                       degenerate_to_sgd=degenerate_to_sgd),
        decay if decoupled_weight_decay else identity(),
        scale_by_learning_rate(learning_rate))
