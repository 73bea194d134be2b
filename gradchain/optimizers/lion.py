"""Lion: the sign of an interpolated momentum, with decoupled weight decay."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.lion import scale_by_lion
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def lion(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.99,
         mu_dtype=None, weight_decay: ScalarOrSchedule = 1e-3, mask=None) -> GradientTransformation:
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")::

        θ -= γ_t · (sign(β1 m_{t-1} + (1 - β1) g_t) + λ θ)
        m_t = β2 m_{t-1} + (1 - β2) g_t

    ``chain(scale_by_lion(β1, β2), add_decayed_weights(λ, mask), scale_by_learning_rate(γ))``:
    one statistic (``m``) per param, half of Adam's state. Arguments, defaults and numbers are
    Optax's ``lion``; the decay is scaled by the full learning rate (torch's and Optax's
    convention). Every coordinate moves by ``γ`` per step, so Lion wants a rate 3-10x smaller
    than AdamW's and a decay as many times larger.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.
      b1: β1 in ``[0, 1]``, the weight of the momentum in the direction.
      b2: β2 in ``[0, 1]``, the decay of the momentum.
      mu_dtype: dtype of ``m`` (default: the params').
      weight_decay: λ ``>= 0``, decoupled (a number, array or schedule).
      mask: the leaves that decay: a prefix tree of booleans, a function of the params
        returning one, or ``fn(path, leaf) -> bool``.

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (``LionState`` with ``m``, the decay's ``WeightDecayState``, the learning rate's
      ``ScaleState``; ``describe_state`` lists them, ``get_hyperparams`` reads the hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.lion(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # each entry moves by γ
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.7998, -1.9996]
    """
    return chain(scale_by_lion(b1, b2, mu_dtype),
                 maybe_add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))
