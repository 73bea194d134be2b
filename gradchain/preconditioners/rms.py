"""RMSProp's preconditioners: divide by the root of an EMA of squares, plain or centred."""

from __future__ import annotations

from gradchain.combinators.branch import branch, divide_by_sqrt
from gradchain.combinators.chain import chain
from gradchain.core.dtypes import abs_sq
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.core.validation import check_not_schedule, check_range
from gradchain.moments.ema import ema
from gradchain.moments.square import square
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


def _moment(decay, corrected, **ema_kwargs):
    return ema(decay, debias=corrected, **ema_kwargs)


def _second_moment(decay, corrected, initial_scale, dtype):
    return chain(square(dtype=dtype),
                 _moment(decay, corrected, initial_value=initial_scale, dtype=dtype, real=True))


def eps_placement(eps, inside_root: bool) -> dict:
    """``divide_by_sqrt``'s arguments for an ε inside the root (``eps_root``) or after it
    (``eps``), stored under the name ``eps`` either way; the other term stays 0, stored as
    ``eps_root`` or ``eps_after_root``, so that setting ``eps`` sets the ε the optimizer was
    built with."""
    if inside_root:
        return {"eps_root": eps, "hyperparam_name": {"eps_root": "eps", "eps": "eps_after_root"}}
    return {"eps": eps}


def _check(owner, eps, initial_scale):
    """Check under the user's names (``eps`` reaches ``divide_by_sqrt`` as ``eps_root`` too)."""
    check_range(owner, "eps", eps, 0)
    check_range(owner, "initial_scale", initial_scale, 0)
    check_not_schedule(owner, "initial_scale", initial_scale)


@public
def scale_by_rms(decay: ScalarOrSchedule = 0.9, eps: ScalarOrSchedule = 1e-8,
                 initial_scale: ScalarOrSchedule = 0.0, eps_in_sqrt: bool = True,
                 bias_correction: bool = False, *,
                 accumulator_dtype=None) -> GradientTransformation:
    """``v_t = ρ v_{t-1} + (1-ρ) g_t²`` (``v_0 = initial_scale``);
    ``out = g_t / √(v_t + ε)`` (``eps_in_sqrt``, Optax's default) or ``g_t / (√v_t + ε)`` (torch).

    Hinton's RMSProp (Tieleman & Hinton 2012). ``bias_correction`` divides ``v_t`` by
    ``1 - ρ^t`` (Optax's option). ``torch.optim.RMSprop`` is
    ``scale_by_rms(0.99, 1e-8, eps_in_sqrt=False)``.

    Args:
      decay: ρ in ``[0, 1]``.
      eps: ε ``>= 0``.
      initial_scale: ``v_0 >= 0``.
      eps_in_sqrt: ε inside the root (Optax) or added to it (torch).
      bias_correction: divide ``v_t`` by ``1 - ρ^t``.
      accumulator_dtype: dtype of ``v`` (default: the params' real dtype).

    Returns:
      A ``GradientTransformation``: ``divide_by_sqrt`` of the gradient by ``v``; its state is a
      ``BranchState`` holding the ``EmaState`` of ``v``.
    """
    _check("scale_by_rms", eps, initial_scale)
    second = _second_moment(decay, bias_correction, initial_scale, accumulator_dtype)
    return divide_by_sqrt(identity(), second, **eps_placement(eps, eps_in_sqrt))


def _variance(second, first):
    return second - abs_sq(first)


@public
def scale_by_stddev(decay: ScalarOrSchedule = 0.9, eps: ScalarOrSchedule = 1e-8,
                    initial_scale: ScalarOrSchedule = 0.0, eps_in_sqrt: bool = True,
                    bias_correction: bool = False, *,
                    accumulator_dtype=None) -> GradientTransformation:
    """Centred RMSProp (Graves 2013): divide by the root of ``v_t - ḡ_t²``, ``ḡ = EMA(g)``.

    ``out = g_t / √(v_t - ḡ_t² + ε)`` or ``g_t / (√(v_t - ḡ_t²) + ε)``; same options as
    ``scale_by_rms``. torch's ``RMSprop(centered=True)`` uses eps outside the root. For complex
    updates ``ḡ_t²`` is ``|ḡ_t|²`` (Optax's convention).

    Args:
      decay: ρ in ``[0, 1]`` of both EMAs.
      eps: ε ``>= 0``.
      initial_scale: ``v_0 >= 0``.
      eps_in_sqrt: ε inside the root (Optax) or added to it (torch).
      bias_correction: divide both EMAs by ``1 - ρ^t``.
      accumulator_dtype: dtype of both EMAs (default: the params').

    Returns:
      A ``GradientTransformation``; its state holds the ``EmaState`` of ``v`` and of ``ḡ``.
    """
    _check("scale_by_stddev", eps, initial_scale)
    second = _second_moment(decay, bias_correction, initial_scale, accumulator_dtype)
    first = _moment(decay, bias_correction, dtype=accumulator_dtype)
    variance = branch(second, first, combine=_variance, name="centered_second_moment")
    return divide_by_sqrt(identity(), variance, **eps_placement(eps, eps_in_sqrt))
