"""Rprop: per-parameter step sizes adapted to the gradient's sign."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.step_size.rprop import scale_by_rprop
from gradchain.step_size.scale import scale
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def rprop(learning_rate: ScalarOrSchedule, eta_minus: ScalarOrSchedule = 0.5,
          eta_plus: ScalarOrSchedule = 1.2, min_step_size: ScalarOrSchedule = 1e-6,
          max_step_size: ScalarOrSchedule = 50.0, *,
          stale_update: bool = False) -> GradientTransformation:
    """Rprop, resilient backpropagation (Riedmiller & Braun 1993; iRprop⁻, Igel & Hüsken 2003)::

        Δ_t = clip(Δ_{t-1} · η^±, Δ_min, Δ_max)     η⁺ while g keeps its sign, η⁻ when it flips
        θ -= Δ_t · sign(g_t)                          no step right after a flip (Δ_0 = γ)

    ``chain(scale_by_rprop(γ, η⁻, η⁺, Δ_min, Δ_max), scale(-1))``: two statistics per param
    (the step sizes and the last step). Argument names and defaults are Optax's ``rprop``; the
    numbers are those of the papers and ``torch.optim.Rprop`` (whose ``lr``, ``etas`` and
    ``step_sizes`` these are). Optax 0.2.8 applies at each update the step chosen at the one
    before (its first update is zero): ``stale_update=True`` reproduces it, see
    ``scale_by_rprop``.

    Args:
      learning_rate: γ ``>= 0``, the initial step size (used once, by ``init``).
      eta_minus: η⁻ in ``(0, 1]``.
      eta_plus: η⁺ ``>= 1``.
      min_step_size: Δ_min ``>= 0``.
      max_step_size: Δ_max ``>= 0``.
      stale_update: Optax 0.2.8's lagging steps.

    Returns:
      A ``GradientTransformation``: the chain above; its state is the tuple of its parts' states
      (``RpropState`` with the step sizes ``Δ`` and the last steps, then ``scale(-1)``'s state;
      ``describe_state`` lists them, ``get_hyperparams`` reads the hyperparameters).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.rprop(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [0.25, 0.5]):  # w[1] flips: no 2nd step
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].tolist()
      [0.78, -1.9]
    """
    return chain(scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size,
                                max_step_size, stale_update=stale_update),
                 scale(-1.0))
