"""NovoGrad: layer-wise second moments, momentum of the normalised gradient."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.novograd import scale_by_novograd
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def novograd(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9,
             b2: ScalarOrSchedule = 0.25, eps: ScalarOrSchedule = 1e-6,
             eps_root: ScalarOrSchedule = 0.0,
             weight_decay: ScalarOrSchedule = 0.0) -> GradientTransformation:
    """NovoGrad (Ginsburg et al. 2019): ``θ -= γ m_t``,
    ``m_t = β1 m_{t-1} + g_t / (√(v_t + eps_root) + ε) + λθ``, ``v_t`` an EMA (β2) of each
    leaf's ``‖g‖²`` (``v_1 = ‖g_1‖²``): one second-moment scalar per leaf.

    ``chain(scale_by_novograd(β1, β2, ε, eps_root, λ), scale_by_learning_rate(γ))``. Arguments,
    defaults and numbers are Optax's ``novograd``.

    Args:
      learning_rate: γ ``>= 0``; a number, array or schedule.
      b1: β1 in ``[0, 1]``.
      b2: β2 in ``[0, 1]``.
      eps: ε ``>= 0``, added to the root.
      eps_root: ``>= 0``, added under the root.
      weight_decay: λ ``>= 0``, added to the normalised gradient inside the momentum.

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts' states;
      ``describe_state`` lists them, ``get_hyperparams``/``set_hyperparams`` read and set the
      hyperparameters by the argument names).

    Example (two steps on a 2×2 matrix):
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([[1.0, -2.0], [0.5, 1.5]])}
      >>> tx = gc.novograd(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[0.5, -0.5], [1.0, 0.25]])}
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].round(4).tolist()
      [[0.884, -1.884], [0.268, 1.442]]
    """
    return chain(scale_by_novograd(b1, b2, eps, eps_root, weight_decay),
                 scale_by_learning_rate(learning_rate))
