"""Adam, AdamW and AMSGrad."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.adam import scale_by_adam, scale_by_amsgrad
from gradchain.regularization.weight_decay import add_decayed_weights, maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def adam(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
         eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0, mu_dtype=None, *,
         nesterov: bool = False, nu_dtype=None,
         weight_decay: ScalarOrSchedule = 0.0) -> GradientTransformation:
    """Adam (Kingma & Ba 2015): ``θ -= γ · m̂ / (√v̂ + ε)``.

    ``chain(add_decayed_weights(λ), scale_by_adam(β1, β2, ε, eps_root),
    scale_by_learning_rate(γ))``. Arguments and defaults are Optax's; ``weight_decay`` is L2
    (added to the gradient first), as ``torch.optim.Adam(weight_decay=λ)``. ``nesterov=True``
    is NAdam with constant momentum (Optax's ``adam(nesterov=True)``, ``nadam``).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      b1: β1, decay of the first moment, in ``[0, 1)``.
      b2: β2, decay of the second moment, in ``[0, 1)``.
      eps: ε ``>= 0``, added to ``√v̂``.
      eps_root: ε added to ``v̂`` inside the root (Optax's; 0 by default).
      mu_dtype: dtype of the first moment (default: the params'); ``gc.quantized()`` for 8 bits.
      nesterov: use NAdam's Nesterov first moment.
      nu_dtype: dtype of the second moment (default: the params').
      weight_decay: λ ``>= 0`` of L2 regularisation (``λθ`` added to the gradient first).

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.adam(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.9, -1.9]
    """
    return chain(
        maybe_add_decayed_weights(weight_decay),
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate))


@public
def adamw(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
          eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0, mu_dtype=None,
          weight_decay: ScalarOrSchedule = 1e-4, mask=None, *, nesterov: bool = False,
          nu_dtype=None, multiplier=None) -> GradientTransformation:
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay.

    Default (``multiplier=None``), as torch and Optax: the decay is scaled by the full learning
    rate, ``θ -= γ_t · (m̂/(√v̂ + ε) + λθ)``:
    ``chain(scale_by_adam(...), add_decayed_weights(λ), scale_by_learning_rate(γ))``.

    The paper's form: give the schedule multiplier ``η_t`` as ``multiplier`` (a number or
    schedule) and the constant base rate α as ``learning_rate``; then
    ``θ -= η_t · (α · m̂/(√v̂ + ε) + λθ)``: the decay is scaled by ``η_t`` only
    (``λ_torch = λ_paper / α``).

    ``mask``: a prefix tree of booleans, Optax's function of the params returning one, or
    ``fn(path, leaf) -> bool``, selecting the leaves that decay (biases and norm scales are
    usually left out).
    ``nesterov=True`` uses NAdam's first moment.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``. With ``multiplier``, the constant base rate α.
      b1: β1, decay of the first moment, in ``[0, 1)``.
      b2: β2, decay of the second moment, in ``[0, 1)``.
      eps: ε ``>= 0``, added to ``√v̂``.
      eps_root: ε added to ``v̂`` inside the root (Optax's; 0 by default).
      mu_dtype: dtype of the first moment (default: the params'); ``gc.quantized()`` for 8 bits.
      weight_decay: λ ``>= 0`` of the decoupled decay.
      mask: which leaves decay: a prefix tree of booleans, ``fn(params)`` returning one, or
        ``fn(path, leaf) -> bool``; None: all.
      nesterov: use NAdam's Nesterov first moment.
      nu_dtype: dtype of the second moment (default: the params').
      multiplier: the schedule multiplier ``η_t`` of the paper's form, or None.

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.adamw(learning_rate=0.1, weight_decay=0.5)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.85, -1.8]
    """
    preconditioner = scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
                                   nu_dtype=nu_dtype)
    decay = add_decayed_weights(weight_decay, mask)
    if multiplier is None:
        return chain(preconditioner, decay, scale_by_learning_rate(learning_rate))
    return chain(preconditioner, scale_by_learning_rate(learning_rate, flip_sign=False), decay,
                 scale_by_learning_rate(multiplier, hyperparam_name="multiplier"))


@public
def amsgrad(learning_rate: ScalarOrSchedule, b1: ScalarOrSchedule = 0.9,
            b2: ScalarOrSchedule = 0.999, eps: ScalarOrSchedule = 1e-8,
            eps_root: ScalarOrSchedule = 0.0, mu_dtype=None, bias_correction_mu: bool = True,
            bias_correction_nu: bool = True, *, max_on_raw: bool = False, nu_dtype=None,
            weight_decay: ScalarOrSchedule = 0.0) -> GradientTransformation:
    """AMSGrad (Reddi et al. 2018): Adam with ``v_max = max(v_max, ·)`` in the denominator.

    ``max_on_raw=False`` is Optax's ``amsgrad`` (max of the bias-corrected v̂);
    ``max_on_raw=True`` is ``torch.optim.Adam(amsgrad=True)`` (max of the raw v, then divided by
    the current ``1 - β2^t``). ``bias_correction_mu``/``bias_correction_nu`` are Optax's
    switches (both off: the paper). ``weight_decay`` is L2, as in torch.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      b1: β1, decay of the first moment, in ``[0, 1)``.
      b2: β2, decay of the second moment, in ``[0, 1)``.
      eps: ε ``>= 0``, added to ``√v̂``.
      eps_root: ε added to ``v̂`` inside the root (Optax's; 0 by default).
      mu_dtype: dtype of the first moment (default: the params'); ``gc.quantized()`` for 8 bits.
      bias_correction_mu: bias-correct the first moment.
      bias_correction_nu: bias-correct the second moment.
      max_on_raw: take the maximum of the raw ``v`` (torch) instead of ``v̂`` (Optax).
      nu_dtype: dtype of the second moment and its maximum (default: the params').
      weight_decay: λ ``>= 0`` of L2 regularisation.

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.amsgrad(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.9, -1.9]
    """
    return chain(
        maybe_add_decayed_weights(weight_decay),
        scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu,
                         bias_correction_nu, max_on_raw=max_on_raw, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate))
