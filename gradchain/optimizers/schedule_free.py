"""Schedule-Free SGD and AdamW: no decay schedule, an average of the iterates instead."""

from __future__ import annotations

from gradchain.combinators.branch import divide_by_sqrt
from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.core.validation import check_range, check_steps
from gradchain.optimizers.sgd import sgd
from gradchain.preconditioners.adam import second_moment
from gradchain.regularization.weight_decay import add_decayed_weights, maybe_add_decayed_weights
from gradchain.schedules.constant import constant_schedule
from gradchain.schedules.join import linear_warmup
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.wrappers.schedule_free import schedule_free
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


def _warmed_up(name, learning_rate, warmup_steps):
    """Optax's warm-up: linear from 0 to ``learning_rate`` over ``warmup_steps``, then flat
    (``warmup_constant_schedule``); a scheduled ``learning_rate`` follows the warm-up."""
    check_range(name, "learning_rate", learning_rate, 0)
    if warmup_steps is None:
        return learning_rate
    check_steps(name, "warmup_steps", warmup_steps)
    after = learning_rate if callable(learning_rate) else constant_schedule(learning_rate)
    return linear_warmup(after, warmup_steps, 0.0)


@public
def schedule_free_sgd(learning_rate: ScalarOrSchedule = 1.0, warmup_steps=None,
                      b1: ScalarOrSchedule = 0.9, weight_decay=None,
                      weight_lr_power: ScalarOrSchedule = 2.0,
                      state_dtype=None) -> GradientTransformation:
    """Schedule-Free SGD (Defazio et al. 2024): ``schedule_free(chain(add_decayed_weights(λ),
    sgd(γ)), γ, b1, weight_lr_power, state_dtype)``.

    Evaluate at ``schedule_free_eval_params(state, params)``. Optax's
    ``contrib.schedule_free_sgd``: same arguments, defaults and numbers.

    Args:
      learning_rate: γ ``>= 0``, a number, array or schedule.
      warmup_steps: a linear warm-up from 0 over this many steps (an integer ``>= 1``; a
        scheduled rate starts after it), or None.
      b1: β1 in ``(0, 1]``, the interpolation (``schedule_free``).
      weight_decay: λ ``>= 0`` (L2, added to the gradient, so scaled by γ), or None.
      weight_lr_power: p ``>= 0``, the averaging weights ``γ̄_t^p``.
      state_dtype: dtype of ``z`` (None: the params', at least float32; see ``schedule_free``).

    Returns:
      A ``GradientTransformation`` whose state is a ``ScheduleFreeState`` (``z``, the averaging
      weights' sum, the largest rate so far, the base chain's state, the hyperparameters). Its
      updates move the params ``y``; evaluate at ``schedule_free_eval_params(state, params)``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.schedule_free_sgd(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # y, not x
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.9362, -1.9775]
      >>> gc.schedule_free_eval_params(state, params)["w"].tolist()  # x, to evaluate at
      [0.9375, -1.975]
    """
    learning_rate = _warmed_up("schedule_free_sgd", learning_rate, warmup_steps)
    decay = identity() if weight_decay is None else add_decayed_weights(weight_decay)
    return schedule_free(chain(decay, sgd(learning_rate)), learning_rate, b1, weight_lr_power,
                         state_dtype)


@public
def schedule_free_adamw(learning_rate: ScalarOrSchedule = 0.0025, warmup_steps=None,
                        b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
                        eps: ScalarOrSchedule = 1e-8, weight_decay: ScalarOrSchedule = 0.0,
                        weight_lr_power: ScalarOrSchedule = 2.0,
                        state_dtype=None) -> GradientTransformation:
    """Schedule-Free AdamW (Defazio et al. 2024): AdamW without its first moment, made
    schedule-free: ``schedule_free(chain(divide_by_sqrt(identity(), second_moment(β2), eps=ε),
    add_decayed_weights(λ), scale_by_learning_rate(γ)), γ, b1, ...)``.

    The base step is ``g / (√v̂ + ε) + λθ`` (bias-corrected ``v``, no momentum: β1 is the
    interpolation's). Evaluate at ``schedule_free_eval_params(state, params)``. Optax's
    ``contrib.schedule_free_adamw``: same arguments, defaults and numbers.

    Args:
      learning_rate: γ ``>= 0``, a number, array or schedule.
      warmup_steps: a linear warm-up from 0 over this many steps (an integer ``>= 1``; a
        scheduled rate starts after it), or None.
      b1: β1 in ``(0, 1]``, the interpolation (``schedule_free``).
      b2: β2 in ``[0, 1)``, the second moment's decay.
      eps: ε ``>= 0``, added to ``√v̂``.
      weight_decay: λ ``>= 0``, decoupled (scaled by γ).
      weight_lr_power: p ``>= 0``, the averaging weights ``γ̄_t^p``.
      state_dtype: dtype of ``z`` (None: the params', at least float32; see ``schedule_free``).

    Returns:
      A ``GradientTransformation`` whose state is a ``ScheduleFreeState`` (``z``, the averaging
      weights' sum, the largest rate so far, the base chain's state with ``v``, the
      hyperparameters). Its updates move the params ``y``; evaluate at
      ``schedule_free_eval_params(state, params)``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.schedule_free_adamw(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # y, not x
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.8652, -1.955]
      >>> gc.schedule_free_eval_params(state, params)["w"].tolist()  # x, to evaluate at
      [0.8684, -1.95]
    """
    learning_rate = _warmed_up("schedule_free_adamw", learning_rate, warmup_steps)
    base = chain(divide_by_sqrt(identity(), second_moment(b2), eps=eps),
                 maybe_add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))
    return schedule_free(base, learning_rate, b1, weight_lr_power, state_dtype)
