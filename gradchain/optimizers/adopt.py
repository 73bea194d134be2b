"""ADOPT: Adam with the update normalised by the previous second moment."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.adopt import _clip_at_fourth_root, scale_by_adopt
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def adopt(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9,
          b2: ScalarOrSchedule = 0.9999, eps: ScalarOrSchedule = 1e-6, mu_dtype=None, *,
          nesterov: bool = False, use_clipping: bool = True,
          clip_value_fn=_clip_at_fourth_root) -> GradientTransformation:
    """ADOPT (Taniguchi et al., NeurIPS 2024): ``θ -= γ · m_t``,
    ``m_t = β1 m_{t-1} + (1 - β1) · clip(g_t / max(√v_{t-1}, ε), ±(t-1)^{1/4})``,
    ``v_t = β2 v_{t-1} + (1 - β2) g_t²`` (``v_1 = g_1²``, no step at the first update).

    ``chain(scale_by_adopt(β1, β2, ε), scale_by_learning_rate(γ))``. Arguments, defaults and
    numbers are Optax's ``contrib.adopt``.

    Args:
      learning_rate: γ ``>= 0``; a number, array or schedule.
      b1: β1 in ``[0, 1]``.
      b2: β2 in ``[0, 1]``.
      eps: ε ``>= 0``, the floor of ``√v``.
      mu_dtype: dtype of ``m`` (default: the params').
      nesterov: Nesterov's look-ahead, ``β1 m_t + (1 - β1) x_t``.
      use_clipping: clip the normalised gradient to ``±clip_value_fn(t - 1)``.
      clip_value_fn: ``count -> c`` (count 0 at the first update), default ``count^{1/4}``.

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts' states;
      ``describe_state`` lists them, ``get_hyperparams``/``set_hyperparams`` read and set the
      hyperparameters by the argument names).

    Example (two steps on a 2×2 matrix):
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([[1.0, -2.0], [0.5, 1.5]])}
      >>> tx = gc.adopt(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[0.5, -0.5], [1.0, 0.25]])}
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].round(4).tolist()
      [[0.99, -1.99], [0.49, 1.49]]
    """
    return chain(
        scale_by_adopt(b1, b2, eps, mu_dtype, nesterov=nesterov, use_clipping=use_clipping,
                       clip_value_fn=clip_value_fn),
        scale_by_learning_rate(learning_rate))
