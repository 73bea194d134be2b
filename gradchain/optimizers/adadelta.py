"""Adadelta."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.preconditioners.adadelta import scale_by_adadelta
from gradchain.regularization.weight_decay import maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate


@public
def adadelta(learning_rate=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, weight_decay_mask=None, *,
             accumulator_dtype=None):
    """Adadelta (Zeiler 2012): ``θ -= γ · √(u + ε)/√(v + ε) · g``.

    Same numbers as ``torch.optim.Adadelta`` (lr 1.0, ρ 0.9, ε 1e-6, L2 weight decay) and
    Optax's ``adadelta`` given a learning rate. Optax's default ``learning_rate=None`` skips the
    learning-rate stage and so steps *up* the gradient; here the default is torch's 1.0, a
    descent step. The paper uses ρ = 0.95. ``weight_decay_mask`` (Optax's) selects the leaves
    that decay.
    """
    return chain(
        maybe_add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps, accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(learning_rate))
