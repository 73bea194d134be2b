"""Sequential composition: ``chain(a, b, c)`` applies ``a``, then ``b``, then ``c``."""

from __future__ import annotations

from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_transformations


@public
def chain(*transformations) -> GradientTransformation:
    """Compose transformations in order: ``u -> t_n(...t_2(t_1(u)))``.

    The state is the tuple of the parts' states. Keyword extras given to ``update`` (for example
    ``value=loss``) reach every part that accepts ``**extra``; Optax transformations without
    extra-argument support receive only ``(updates, state, params)``.

    Args:
      *transformations: gradient transformations (gradchain's or Optax's), applied in order.

    Returns:
      A ``GradientTransformation`` whose state is the tuple of the parts' states.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.chain(gc.clip_by_global_norm(1.0), gc.scale_by_learning_rate(0.5))
      >>> params = {"w": jnp.array([0.0, 0.0])}
      >>> updates, _ = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(params), params)
      >>> updates["w"].tolist()  # clipped to norm 1, then times -0.5
      [-0.3, -0.4]
    """
    check_transformations("chain", transformations)

    def init(params):
        return tuple(tx.init(params) for tx in transformations)

    def update(updates, state, params=None, **extra):
        new_state = []
        for tx, s in zip(transformations, state):
            updates, s = call_update(tx, updates, s, params, extra)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update, name="chain", children=transformations,
                                  parts=[((i,), tx) for i, tx in enumerate(transformations)],
                                  state_type=tuple, state_size=len(transformations))
