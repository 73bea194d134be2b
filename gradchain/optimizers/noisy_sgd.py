"""SGD with annealed gradient noise."""

from __future__ import annotations

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.regularization.gradient_noise import add_gradient_noise
from gradchain.step_size.scale import scale_by_learning_rate


@public
def noisy_sgd(learning_rate, eta=0.01, gamma=0.55, key=None, *, form: str = "variance"):
    """SGD on noisy gradients (Neelakantan et al. 2015): ``θ -= γ_t (g + σ_t ξ)``, ξ ~ N(0, 1),
    ``σ_t² = η / (1 + t)^γ`` (``form="std"``: ``σ_t = η / (1 + t)^γ``, the notes' form).

    ``chain(add_gradient_noise(η, γ, key, form=form), scale_by_learning_rate(γ_t))``.
    Arguments, defaults and numbers are Optax's ``noisy_sgd`` (for the same key), except that
    the key is required here (Optax warns without one and uses 0).
    """
    return chain(add_gradient_noise(eta, gamma, key, form=form),
                 scale_by_learning_rate(learning_rate))
