"""Adafactor: factored second moments, relative step sizes, update clipping."""

from __future__ import annotations

import jax.numpy as jnp

from gradchain.clipping.block_rms import clip_by_block_rms
from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.validation import check_range, check_whole_number
from gradchain.moments.ema import ema
from gradchain.preconditioners.factored_rms import scale_by_factored_rms
from gradchain.regularization.weight_decay import add_decayed_weights
from gradchain.step_size.param_scale import scale_by_param_block_rms
from gradchain.step_size.scale import scale, scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


def _relative_step(learning_rate):
    """torch's ``ρ_t = min(γ_t, 1/√t)`` (``t`` from 1) as a schedule of the count."""
    def rate(count):
        value = learning_rate(count) if callable(learning_rate) else learning_rate
        return jnp.minimum(value, 1.0 / jnp.sqrt(count + 1.0))
    return rate


@public
def adafactor(learning_rate=None, min_dim_size_to_factor: int = 128,
              decay_rate: ScalarOrSchedule = 0.8, decay_offset: int = 0,
              multiply_by_parameter_scale: bool = True, clipping_threshold: ScalarOrSchedule = 1.0,
              momentum=None, dtype_momentum=jnp.float32, weight_decay_rate=None,
              eps: ScalarOrSchedule = 1e-30, factored: bool = True, weight_decay_mask=None, *,
              relative_step: bool = False,
              min_scale: ScalarOrSchedule = 1e-3) -> GradientTransformation:
    """Adafactor (Shazeer & Stern 2018): ``θ -= γ_t · max(rms(θ), s) · clip(g / √V̂_t)``.

    ``V̂`` is the factored second moment of ``scale_by_factored_rms`` (rows + columns of state
    for each factored leaf), ``clip(x) = x / max(1, rms(x)/d)``:
    ``chain(scale_by_factored_rms(...), clip_by_block_rms(d), scale_by_learning_rate(γ,
    flip_sign=False), scale_by_param_block_rms(s), ema(momentum), add_decayed_weights(λ),
    scale(-1))``, each optional stage present when its argument asks for it. Arguments,
    defaults and numbers are Optax's ``adafactor`` (``learning_rate=None``: no learning-rate
    stage; ``momentum`` an EMA without bias correction, kept in ``dtype_momentum``;
    ``weight_decay_rate`` λ added after the learning rate, not scaled by it).

    ``torch.optim.Adafactor(lr, beta2_decay=-c, eps=(None, s), d, weight_decay=λ)`` is
    ``adafactor(lr, min_dim_size_to_factor=1, decay_rate=c, clipping_threshold=d,
    weight_decay_rate=lr·λ, relative_step=True, min_scale=s)`` (its decay is scaled by the
    learning rate; see ``scale_by_factored_rms`` for its ε and its factored axes). Give ``c`` as
    a float64 array for torch's float64 ``β2_t`` (a Python number gives Optax's float32 one).

    Args:
      learning_rate: γ ``>= 0`` (a number, array or schedule), or None.
      min_dim_size_to_factor: factor a leaf only if its second largest dimension is at least
        this.
      decay_rate: c, the exponent of ``β2_t = 1 - t^{-c}``.
      decay_offset: subtracted from the step count in ``β2_t`` (fine-tuning).
      multiply_by_parameter_scale: scale the step by ``max(rms(θ), s)`` per leaf.
      clipping_threshold: d ``>= 1`` for the update clipping, or None.
      momentum: in ``[0, 1]``, an EMA of the scaled updates, or None.
      dtype_momentum: dtype of that EMA.
      weight_decay_rate: λ ``>= 0``, or None.
      eps: ε ``>= 0``, added to ``g²``.
      factored: factor the second moment of leaves of 2 or more axes.
      weight_decay_mask: the leaves that decay (as ``add_decayed_weights``).
      relative_step: torch's step size ``γ_t = min(γ, 1/√t)`` (t from 1).
      min_scale: s ``>= 0``, the floor of ``rms(θ)`` (torch's ``eps[1]``).

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts' states;
      ``describe_state`` lists them, ``get_hyperparams``/``set_hyperparams`` read and set the
      hyperparameters by the argument names).

    Example (two steps on a 2×2 matrix):
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([[1.0, -2.0], [0.5, 1.5]])}
      >>> tx = gc.adafactor(learning_rate=0.1, min_dim_size_to_factor=2)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[0.5, -0.5], [1.0, 0.25]])}
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].round(4).tolist()
      [[0.807, -1.6141], [0.2353, 1.3676]]
    """
    if clipping_threshold is not None:
        check_range("adafactor", "clipping_threshold", clipping_threshold, 1)
    if learning_rate is not None:
        check_range("adafactor", "learning_rate", learning_rate, 0)
    if weight_decay_rate is not None:
        check_range("adafactor", "weight_decay_rate", weight_decay_rate, 0)
    check_range("adafactor", "eps", eps, 0)
    check_range("adafactor", "decay_rate", decay_rate, record=False)
    check_whole_number("adafactor", "decay_offset", decay_offset, 0)
    check_whole_number("adafactor", "min_dim_size_to_factor", min_dim_size_to_factor, 0)
    stages = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor,
                                    eps, hyperparam_name={"epsilon": "eps"})]
    if clipping_threshold is not None:
        stages.append(clip_by_block_rms(clipping_threshold,
                                        hyperparam_name="clipping_threshold"))
    if learning_rate is not None:
        rate = _relative_step(learning_rate) if relative_step else learning_rate
        stages.append(scale_by_learning_rate(rate, flip_sign=False))
    if multiply_by_parameter_scale:
        stages.append(scale_by_param_block_rms(min_scale))
    if momentum is not None:
        stages.append(ema(momentum, dtype=dtype_momentum, hyperparam_name="momentum"))
    if weight_decay_rate is not None:
        stages.append(add_decayed_weights(weight_decay_rate, weight_decay_mask,
                                          hyperparam_name="weight_decay_rate"))
    stages.append(scale(-1))
    return chain(*stages)
