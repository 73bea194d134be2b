"""Adadelta's preconditioner: a ratio of two running RMS values."""

from __future__ import annotations

from gradchain.combinators.branch import divide_by_sqrt
from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.transformation import identity
from gradchain.core.validation import check_range
from gradchain.moments.delta_rms import scale_by_delta_rms
from gradchain.moments.ema import ema
from gradchain.moments.square import square
from gradchain.preconditioners.rms import eps_placement
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def scale_by_adadelta(rho: ScalarOrSchedule = 0.9, eps: ScalarOrSchedule = 1e-6, *,
                      accumulator_dtype=None) -> GradientTransformation:
    """``Δ_t = √(u_{t-1} + ε) / √(v_t + ε) · g_t`` with ``v = EMA_ρ(g²)``, ``u = EMA_ρ(Δ²)``
    (Zeiler 2012; ε inside both roots, as torch and Optax). ``ε > 0``: with ε = 0 the first
    ``Δ`` is ``√0 · x = 0`` and ``u`` stays 0, so no step would ever be taken. For complex
    updates ``g²`` and ``Δ²`` are ``|g|²`` and ``|Δ|²``, the convention of Optax's other second
    moments (Optax's ``adadelta`` itself does not support complex params).

    Args:
      rho: ρ in ``[0, 1]``, the decay of both averages.
      eps: ε ``> 0``.
      accumulator_dtype: dtype of ``v`` and ``u`` (default: the params' real dtype).

    Returns:
      A ``GradientTransformation``: ``chain(divide_by_sqrt(identity(), chain(square(), ema(ρ)),
      eps_root=ε), scale_by_delta_rms(ρ, ε))``; its state holds the ``EmaState`` of ``v`` and the
      ``DeltaRmsState`` of ``u``.
    """
    check_range("scale_by_adadelta", "eps", eps, 0, low_open=True)
    return chain(
        divide_by_sqrt(identity(),
                       chain(square(dtype=accumulator_dtype),
                             ema(rho, dtype=accumulator_dtype, hyperparam_name="rho", real=True)),
                       **eps_placement(eps, inside_root=True)),
        scale_by_delta_rms(rho, eps, dtype=accumulator_dtype))
