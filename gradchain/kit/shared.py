"""Shared statistics: compute a statistic once, use it in several places of one optimizer.

Composition is a tree, so a statistic two parts need would otherwise be kept twice: AdaBelief's
first moment ``m`` is its numerator and, through ``(g - m)²``, its denominator; Adan's previous
gradient feeds two moments. ``share(name, tx)`` runs ``tx`` and publishes its output under
``name``; a later part of the same update reads it, with ``shared(name)`` (a transformation
whose output is the shared tree) or ``reads=(name,)`` in a kit rule (which then receives its
leaf by that name)::

    m = share("m", ema(b1))                          # kept once, in share's state
    belief = elementwise(lambda u, m: (u - m) ** 2, name="belief", reads=("m",))
    divide_by_sqrt(chain(m, bias_correction(b1)),
                   chain(belief, ema(b2), bias_correction(b2)))

"Later" is in the order parts run: a chain runs its parts in order, a branch its branches in
order, so a branch reads what an earlier branch shared. The scope is one update of the
outermost gradchain transformation (``core/scope.py``); a part run conditionally
(``switch_to_sgd``, ``MultiSteps``) shares within its own branch only (JAX refuses a value
leaking out of a conditional).
"""

from __future__ import annotations

from typing import NamedTuple

from gradchain.core import scope
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_transformations
from gradchain.kit.rules import elementwise


class ShareState(NamedTuple):
    """The state of ``share``: the shared transformation's."""
    inner: object


def _check_name(owner: str, name) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"{owner}: name={name!r} must be a Python identifier (a kit rule "
                        "receives the shared statistic as a keyword argument of that name)")


@public
def share(name: str, transformation: GradientTransformation) -> GradientTransformation:
    """Run ``transformation`` and publish its output under ``name`` for the rest of the update.

    The output flows on unchanged; the statistic is kept once, in ``transformation``'s state
    (``ShareState.inner``).

    Args:
      name: the name later parts read it by (``shared(name)``, ``reads=(name,)``); a Python
        identifier, unique within the optimizer.
      transformation: what computes the statistic (an ``ema``, a gradient difference).

    Returns:
      A ``GradientTransformation`` whose state is ``ShareState`` (the inner transformation's
      state as ``inner``).
    """
    _check_name("share", name)
    check_transformations("share", {"transformation": transformation})

    def init(params):
        return ShareState(transformation.init(params))

    def update(updates, state, params=None, **extra):
        out, inner = call_update(transformation, updates, state.inner, params, extra)
        scope.publish("share", name, out)
        return out, ShareState(inner)

    return GradientTransformation(init, update, name=f"share[{name}]",
                                  children=(transformation,),
                                  parts=[(("inner",), transformation)], state_type=ShareState)


@public
def shared(name: str) -> GradientTransformation:
    """The statistic shared under ``name`` earlier in the update, in place of the incoming
    updates (whose tree it must have); keeps no state.

    Args:
      name: the name given to ``share``.

    Returns:
      A stateless ``GradientTransformation``.
    """
    _check_name("shared", name)
    return elementwise(lambda u, **shared_values: shared_values[name], name=f"shared[{name}]",
                       reads=(name,))
