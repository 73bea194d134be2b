"""SWATS: switch from Adam to SGD with momentum."""

from __future__ import annotations

from gradchain.combinators.branch import divide_by_sqrt
from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.kit.rules import elementwise
from gradchain.moments.ema import ema
from gradchain.moments.folded_bias_correction import folded_bias_correction
from gradchain.moments.momentum import scale_by_momentum
from gradchain.moments.square import square
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import ScaleState, scale_by_learning_rate
from gradchain.wrappers.switch_to_sgd import switch_to_sgd
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


@public
def swats(learning_rate: ScalarOrSchedule = 1e-3, b1: ScalarOrSchedule = 0.9,
          b2: ScalarOrSchedule = 0.999, eps: ScalarOrSchedule = 1e-9, *,
          tolerance: ScalarOrSchedule = 1e-9, weight_decay: ScalarOrSchedule = 0.0,
          nesterov: bool = False, axis_name=None) -> GradientTransformation:
    """SWATS (Keskar & Socher 2017): Adam until the SGD rate it implies has settled, then SGD
    with momentum at that rate Λ (see ``switch_to_sgd`` for the estimate and the switch).

    Adam phase, as the paper writes it (ε on the raw root, Adam's efficient form)::

        p_k = -γ · √(1 - β2^k)/(1 - β1^k) · m_k / (√v_k + ε)

    ``chain(divide_by_sqrt(ema(β1), chain(square(), ema(β2)), eps=ε),
    folded_bias_correction(β1, β2), scale_by_learning_rate(γ))``. SGD phase:
    ``v_k = β1 v_{k-1} + g_k``, ``θ -= (1 - β1) Λ v_k``:
    ``chain(scale_by_momentum(β1), <multiply by 1 - β1>)``. The estimate's decay is β2 and
    the switching tolerance the paper's ε = 1e-9 (an absolute one). Defaults are the paper's.
    Every stage stores β1 as ``b1`` and β2 as ``b2`` (the momentum, the estimate's decay), and
    ``1 - β1`` is computed from the stored ``b1`` at each update, so ``set_hyperparams(tx,
    state, b1=...)`` changes both phases as building with that ``b1`` would.
    ``weight_decay`` is L2, added to the gradient first (in both phases); ``nesterov`` uses a
    Nesterov momentum in the SGD phase. ``axis_name``: the mesh or ``pmap`` axis the params
    are split over, for the switch's products over the whole parameter vector
    (``switch_to_sgd``).

    The switch needs the projected rate to come within ``tolerance`` of its running average:
    with noisy mini-batch gradients the paper's 1e-9 rarely triggers (on the digits examples
    γ_k is ~0.2 and fluctuates by ~0.1; ``tolerance=1e-3`` switches within the first epochs).

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule ``step -> value``.
      b1: β1 in ``[0, 1)``, Adam's first moment and the SGD phase's momentum.
      b2: β2 in ``[0, 1)``, Adam's second moment and the estimate's decay.
      eps: ε ``>= 0``, on the raw root.
      tolerance: the switching tolerance (absolute).
      weight_decay: λ ``>= 0`` of L2 regularisation.
      nesterov: Nesterov momentum in the SGD phase.
      axis_name: the mesh or ``pmap`` axis the params are split over, or None.

    Returns:
      A ``GradientTransformation``: the chain above, whose state is the tuple of its parts'
      states (``gradchain.describe_state`` lists them; hyperparameters in their ``hyperparams``
      dicts, read and set with ``get_hyperparams``/``set_hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.swats(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.9, -1.9]
    """
    adam_step = chain(
        divide_by_sqrt(ema(b1, hyperparam_name="b1"),
                       chain(square(), ema(b2, hyperparam_name="b2", real=True)), eps=eps),
        folded_bias_correction(b1, b2),
        scale_by_learning_rate(learning_rate))
    sgd_direction = chain(
        scale_by_momentum(b1, nesterov=nesterov, hyperparam_name={"momentum": "b1"}),
        _scale_by_one_minus_b1(b1))
    return chain(
        maybe_add_decayed_weights(weight_decay),
        switch_to_sgd(adam_step, sgd_direction, estimate_decay=b2, tolerance=tolerance,
                      axis_name=axis_name, hyperparam_name={"estimate_decay": "b2"}))


def _scale_by_one_minus_b1(b1):
    """``u -> (1 - β1) · u`` with β1 stored (as ``b1``), its complement computed per update."""
    return elementwise(lambda u, factor: u * factor, name="scale_by_one_minus_b1",
                       hyperparams={"b1": b1}, scalars=lambda b1: {"factor": 1 - b1},
                       output_dtype="params", state_type=ScaleState)
