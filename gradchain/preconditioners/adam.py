"""Adam's and AMSGrad's preconditioners, composed from moment primitives."""

from __future__ import annotations

from gradchain.combinators.branch import divide_by_sqrt
from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.moments.bias_correction import bias_correction
from gradchain.moments.ema import ema
from gradchain.moments.max_v import max_v
from gradchain.moments.nesterov import nesterov_first_moment
from gradchain.moments.square import square
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def first_moment(b1: ScalarOrSchedule = 0.9, *, dtype=None) -> GradientTransformation:
    """Bias-corrected EMA of the gradient: ``m̂_t = m_t / (1 - β1^t)``, ``β1`` in ``[0, 1)``:
    ``ema(b1, debias=True)`` under the name ``b1`` (one stored decay for the average and its
    correction).

    Args:
      b1: β1 in ``[0, 1)``; a number, array or schedule (``b1`` in ``hyperparams``).
      dtype: dtype of ``m`` (default: the params').

    Returns:
      ``ema(β1, debias=True)``: its state is ``EmaState``.
    """
    return ema(b1, debias=True, dtype=dtype, hyperparam_name="b1")


@public
def second_moment(b2: ScalarOrSchedule = 0.999, *, dtype=None) -> GradientTransformation:
    """Bias-corrected EMA of the squared gradient: ``v̂_t = v_t / (1 - β2^t)``, ``β2`` in
    ``[0, 1)``: ``chain(square(), ema(b2, debias=True))`` under the name ``b2``.

    Args:
      b2: β2 in ``[0, 1)``; a number, array or schedule (``b2`` in ``hyperparams``).
      dtype: dtype of ``v`` (default: the params' real dtype).

    Returns:
      ``chain(square(), ema(β2, debias=True))``: its state is ``(EmptyState, EmaState)``.
    """
    return chain(square(dtype=dtype),
                 ema(b2, debias=True, dtype=dtype, hyperparam_name="b2", real=True))


@public
def scale_by_adam(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
                  eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0, mu_dtype=None, *,
                  nesterov: bool = False, nu_dtype=None) -> GradientTransformation:
    """``out = m̂_t / (√(v̂_t + eps_root) + eps)`` (Kingma & Ba 2015).

    ``m_t = β1 m + (1-β1) g``, ``v_t = β2 v + (1-β2) g²``, both bias-corrected. ε sits after the
    root of the corrected ``v̂`` (torch and Optax agree); ``eps_root`` is Optax's extra term
    inside it. ``mu_dtype``/``nu_dtype`` set the moments' dtypes (default: the params').
    ``nesterov=True`` swaps the numerator for ``nesterov_first_moment(b1)``: NAdam, as Optax's
    ``scale_by_adam(nesterov=True)``.

    Args:
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      eps: ε ``>= 0``, after the root.
      eps_root: ``>= 0``, inside the root.
      mu_dtype: dtype of ``m`` (default: the params'); ``gc.quantized()`` for 8 bits.
      nesterov: NAdam's Nesterov first moment as the numerator.
      nu_dtype: dtype of ``v`` (default: the params' real dtype).

    Returns:
      ``divide_by_sqrt(first_moment(β1), second_moment(β2), eps=ε, eps_root=ε_root)``: its
      state is a ``BranchState`` whose ``branches`` hold the ``EmaState`` of ``m`` and of ``v``
      (with their bias corrections' counts).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.scale_by_adam()
      >>> params = {"w": jnp.array([0.0, 0.0])}
      >>> updates, state = tx.update({"w": jnp.array([0.5, -2.0])}, tx.init(params), params)
      >>> updates["w"].tolist()  # the first step is the gradient's sign
      [1.0, -1.0]
    """
    numerator = (nesterov_first_moment(b1, dtype=mu_dtype) if nesterov
                 else first_moment(b1, dtype=mu_dtype))
    return divide_by_sqrt(numerator, second_moment(b2, dtype=nu_dtype),
                          eps=eps, eps_root=eps_root)


@public
def scale_by_amsgrad(b1: ScalarOrSchedule = 0.9, b2: ScalarOrSchedule = 0.999,
                     eps: ScalarOrSchedule = 1e-8, eps_root: ScalarOrSchedule = 0.0, mu_dtype=None,
                     bias_correction_mu: bool = True, bias_correction_nu: bool = True, *,
                     max_on_raw: bool = False, nu_dtype=None) -> GradientTransformation:
    """AMSGrad (Reddi et al. 2018): Adam with a running maximum of the second moment.

    ``max_on_raw=False`` (Optax): ``v_max = max(v_max, v̂_t)``, out ``m̂ / (√v_max + ε)``.
    ``max_on_raw=True`` (torch ``Adam(amsgrad=True)``): ``v_max = max(v_max, v_t)`` over the
    raw ``v``, then divided by the current ``1 - β2^t``. They differ from the second step.
    The same primitives in a different order: ``max_v`` after ``ema(b2, debias=True)``, or
    between ``ema(b2)`` and ``bias_correction(b2)`` (both stages store the one name ``b2``).
    ``bias_correction_mu``/``bias_correction_nu`` (Optax's switches) leave out the corrections;
    both off is the paper's algorithm (ε aside).

    Args:
      b1: β1 in ``[0, 1)``.
      b2: β2 in ``[0, 1)``.
      eps: ε ``>= 0``, after the root.
      eps_root: ``>= 0``, inside the root.
      mu_dtype: dtype of ``m`` (default: the params').
      bias_correction_mu: bias-correct ``m``.
      bias_correction_nu: bias-correct ``v``.
      max_on_raw: the maximum of the raw ``v`` (torch) instead of ``v̂`` (Optax).
      nu_dtype: dtype of ``v`` and ``v_max`` (default: the params' real dtype).

    Returns:
      A ``GradientTransformation``; its state is ``scale_by_adam``'s plus a ``MaxVState``
      holding ``v_max``.
    """
    check_range("scale_by_amsgrad", "b2", b2, 0, 1, high_open=True)
    debias = bias_correction_nu and not max_on_raw
    stages = [square(dtype=nu_dtype),
              ema(b2, debias=debias, dtype=nu_dtype, hyperparam_name="b2", real=True),
              max_v(dtype=nu_dtype)]
    if bias_correction_nu and max_on_raw:
        stages.append(bias_correction(b2, hyperparam_name="b2"))
    numerator = (first_moment(b1, dtype=mu_dtype) if bias_correction_mu
                 else ema(b1, dtype=mu_dtype, hyperparam_name="b1"))
    return divide_by_sqrt(numerator, chain(*stages), eps=eps, eps_root=eps_root)
