"""Nesterov's look-ahead of a first moment computed elsewhere (AdaBelief's, with Optax)."""

from __future__ import annotations

from gradchain.core.hyperparams import next_count
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.rules import elementwise
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "nesterov_look_ahead"


@public
def nesterov_look_ahead(b1: ScalarOrSchedule = 0.9, *, moment: str) -> GradientTransformation:
    """``out = β1 · m_t / (1 - β1^{t+1}) + (1 - β1) · g_t / (1 - β1^t)`` (Dozat 2016; Optax's
    ``nesterov=True`` of Adam, RAdam and AdaBelief), ``t`` from 1 at the first update.

    ``m_t = β1 m_{t-1} + (1 - β1) g_t`` is read, not kept: the first moment shared under the
    name ``moment`` (``share(moment, ema(β1))`` earlier in the same update). With its own
    moment, use ``nesterov_first_moment``.

    Args:
      b1: β1 in ``[0, 1)`` (a number, array or schedule), the decay of the shared moment.
      moment: the name the first moment is shared under.

    Returns:
      A ``GradientTransformation`` that keeps no statistic: its state holds the step count and
      ``b1`` in ``hyperparams``.
    """
    check_range(NAME, "b1", b1, 0, 1, high_open=True)

    def scalars(b1, step):
        return {"weight": 1 - b1, "correction": 1 - b1 ** step,
                "next_correction": 1 - b1 ** next_count(step)}

    def rule(u, b1, weight, correction, next_correction, **shared):
        return b1 * (shared[moment] / next_correction) + weight * (u / correction)

    return elementwise(rule, name=NAME, hyperparams={"b1": b1}, scalars=scalars,
                       reads=(moment,))
