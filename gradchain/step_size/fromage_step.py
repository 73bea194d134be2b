"""Fromage's step: a descent step followed by a shrink that keeps the weights' norm in check."""

from __future__ import annotations

from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import elementwise
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "fromage_step"


@public
def fromage_step(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """``θ -> (θ - γ_t · u) / √(1 + γ_t²)`` as an update (Bernstein et al. 2020, "On the
    distance between two neural networks and the stability of learning", Algorithm 1)::

        out = -γ_t/√(1 + γ_t²) · u + (1/√(1 + γ_t²) - 1) · θ

    With ``u = ‖θ‖/‖g‖ · g`` per layer (``scale_by_trust_ratio``) the step has relative size
    γ, and the division by ``√(1 + γ²)`` keeps the layer's norm from growing (exactly, for a
    step orthogonal to ``θ``). The factor is computed once per update from the learning rate in
    the state, so setting ``learning_rate`` at run time changes both terms. The final stage:
    the update is in the params' dtype. Needs ``params``.

    Args:
      learning_rate: γ ``>= 0``: a number, array or schedule.

    Returns:
      A ``GradientTransformation`` that keeps no statistic: its state holds ``learning_rate`` in
      ``hyperparams``.
    """
    check_range(NAME, "learning_rate", learning_rate, 0)

    def scalars(learning_rate):
        shrink = 1 / (1 + learning_rate ** 2) ** 0.5
        return {"step_factor": -(learning_rate * shrink), "decay_factor": shrink - 1}

    return elementwise(lambda u, param, step_factor, decay_factor:
                       step_factor * u + decay_factor * param,
                       name=NAME, hyperparams={"learning_rate": learning_rate},
                       scalars=scalars, output_dtype="params")
