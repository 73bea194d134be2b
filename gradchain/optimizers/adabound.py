"""AdaBound and AMSBound: Adam whose per-parameter step size is clipped towards SGD's."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.moments.ema import ema
from gradchain.moments.max_v import max_v
from gradchain.moments.square import square
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.clip_lr import clip_lr
from gradchain.step_size.per_parameter import per_parameter_step
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def adabound(learning_rate: ScalarOrSchedule = 1e-3, b1: ScalarOrSchedule = 0.9,
             b2: ScalarOrSchedule = 0.999, final_lr: ScalarOrSchedule = 0.1,
             gamma: ScalarOrSchedule = 1e-3, eps: ScalarOrSchedule = 1e-8,
             weight_decay: ScalarOrSchedule = 0.0, amsbound: bool = False, *,
             base_learning_rate=None) -> GradientTransformation:
    """AdaBound (Luo et al. ICLR 2019): ``θ -= γ_t · clip(c_t / (√v_t + ε), lo_t, hi_t) · m_t``
    with raw moments ``m``, ``v``, ``c_t = √(1 - β2^t)/(1 - β1^t)`` and bounds converging to
    ``final_lr · γ_t / γ_0`` (see ``clip_lr``). The chain::

        chain(add_decayed_weights(λ),
              per_parameter_step(ema(β1),
                                 chain(square(), ema(β2), clip_lr(final_lr, γ_0, gamma, ε,
                                                                  b1=β1, b2=β2))),
              scale_by_learning_rate(γ))

    ``amsbound=True`` puts ``max_v()`` after ``ema(β2)`` (AMSBound). Arguments, defaults and
    numbers are the authors' ``AdaBound`` (``Luolc/AdaBound``): ``weight_decay`` is L2, added to
    the gradient first, and ``base_learning_rate`` γ_0 ``> 0`` is the rate ``final_lr`` is
    quoted for (default: ``learning_rate``, or its value at step 0 for a schedule). The
    paper's Algorithm 2 differs (bias-corrected moments outside the clip, an extra ``1/√t``);
    the code is followed.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      final_lr: the SGD rate ``> 0`` both bounds converge to, quoted for ``base_learning_rate``.
      gamma: the bounds' convergence speed ``> 0``.
      eps: ε ``>= 0``.
      weight_decay: λ ``>= 0`` of L2 regularisation.
      amsbound: keep the running maximum of ``v`` (AMSBound).
      base_learning_rate: γ_0 ``> 0``, the rate ``final_lr`` is quoted for (default:
        ``learning_rate``, or its value at step 0).

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.adabound(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.9, -1.9]
    """
    if base_learning_rate is None:
        # γ_0 must be > 0 (clip_lr's base_learning_rate): checked under the name the user gave,
        # not recorded (the learning rate in the state may be set to 0 later; γ_0 stays).
        name, base_learning_rate = (("learning_rate(0)", learning_rate(0))
                                    if callable(learning_rate)
                                    else ("learning_rate", learning_rate))
        check_range("adabound", name, base_learning_rate, 0, low_open=True, record=False)
    second = [square(), ema(b2, hyperparam_name="b2", real=True)]
    if amsbound:
        second.append(max_v())
    second.append(clip_lr(final_lr, base_learning_rate, gamma, eps, b1=b1, b2=b2))
    return chain(
        maybe_add_decayed_weights(weight_decay),
        per_parameter_step(ema(b1, hyperparam_name="b1"), chain(*second)),
        scale_by_learning_rate(learning_rate))


@public
def amsbound(learning_rate: ScalarOrSchedule = 1e-3, b1: ScalarOrSchedule = 0.9,
             b2: ScalarOrSchedule = 0.999, final_lr: ScalarOrSchedule = 0.1,
             gamma: ScalarOrSchedule = 1e-3, eps: ScalarOrSchedule = 1e-8,
             weight_decay: ScalarOrSchedule = 0.0, *,
             base_learning_rate=None) -> GradientTransformation:
    """AMSBound (Luo et al. 2019): ``adabound(..., amsbound=True)``, AdaBound with AMSGrad's
    running maximum of the raw second moment.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      final_lr: the SGD rate ``> 0`` both bounds converge to.
      gamma: the bounds' convergence speed ``> 0``.
      eps: ε ``>= 0``.
      weight_decay: λ ``>= 0`` of L2 regularisation.
      base_learning_rate: γ_0 ``> 0``, the rate ``final_lr`` is quoted for.

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.amsbound(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.9, -1.9]
    """
    return adabound(learning_rate, b1, b2, final_lr, gamma, eps, weight_decay, amsbound=True,
                    base_learning_rate=base_learning_rate)
