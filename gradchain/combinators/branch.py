"""Parallel composition: several statistics of the same input, combined leaf by leaf.

Adam's step ``m̂ / (√v̂ + ε)`` needs two statistics of the same raw gradient: a first-moment
chain and a second-moment chain. ``branch`` feeds the same updates to each sub-chain and combines
their outputs; ``divide_by_sqrt`` is the branch every adaptive method uses. A user inserts,
removes or swaps a piece of either sub-chain (``max_v`` for AMSGrad, a centred second moment for
RMSProp) without touching the rest.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradchain.core.dtypes import is_complex, real_dtype
from gradchain.core.hyperparams import cast, compute_dtype, state_names
from gradchain.core.leafwise import map_leaves
from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation, call_update
from gradchain.core.validation import check_range, check_transformations
from gradchain.kit.contract import Contract
from gradchain.core.hyperparams import ScalarOrSchedule


class BranchState(NamedTuple):
    count: jax.Array
    branches: tuple
    hyperparams: dict


@public
def branch(*transformations, combine: Callable, name: str = "branch",
           **hyperparams) -> GradientTransformation:
    """Apply each transformation to the same updates and combine their outputs per leaf.

    ``out = combine(t_1(u), ..., t_n(u), **hyperparams)``, leaf by leaf; the result has the
    dtype of the incoming updates (its real dtype where ``combine`` gives a real result from
    complex updates: a variance). Numeric ``hyperparams`` (numbers, arrays or schedules) live in
    the state like every other hyperparameter. The state's ``count`` is None unless one of
    them is a schedule.

    Args:
      *transformations: the transformations, each given the same incoming updates.
      combine: ``combine(out_1, ..., out_n, **hyperparams) -> leaf``, applied leaf by leaf.
      name: the name shown by ``describe`` and used in errors.
      **hyperparams: numeric hyperparameters given to ``combine`` by name (numbers, arrays or
        schedules), kept in the state.

    Returns:
      A ``GradientTransformation`` whose state is a ``BranchState``: ``count`` (None unless a
      hyperparameter is scheduled), ``branches`` (the tuple of the branches' states) and
      ``hyperparams``.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.branch(gc.identity(), gc.square(), combine=lambda g, g2, c: c * g + g2, c=2.0)
      >>> params = {"w": jnp.array([1.0, 3.0])}
      >>> updates, _ = tx.update({"w": jnp.array([1.0, 3.0])}, tx.init(params), params)
      >>> updates["w"].tolist()
      [3.0, 15.0]
    """
    check_transformations(name, transformations)
    contract = Contract(name, hyperparams)

    def init(params):
        return BranchState(contract.init_count(),
                           tuple(tx.init(params) for tx in transformations),
                           contract.init_hyperparams())

    def update(updates, state, params=None, **extra):
        outputs, states = [], []
        for tx, s in zip(transformations, state.branches):
            out, s = call_update(tx, updates, s, params, extra)
            outputs.append(out)
            states.append(s)
        step = contract.begin(updates, state)
        scalars = Contract.scalars(step.values)

        def leaf(u, *outs):
            out = combine(*outs, **scalars(compute_dtype(*outs)))
            return cast(out, u.dtype if is_complex(jnp.result_type(out)) else real_dtype(u.dtype))

        leaves, treedef = jax.tree.flatten(updates)
        combined = treedef.unflatten(map_leaves(leaf, leaves, *[treedef.flatten_up_to(out)
                                                                 for out in outputs]))
        return combined, BranchState(step.count, tuple(states), step.stored)

    return GradientTransformation(init, update, name=name, hyperparams=contract.specs,
                                  children=transformations,
                                  parts=[(("branches", i), tx)
                                         for i, tx in enumerate(transformations)],
                                  state_type=BranchState)


def _divide(numerator, denominator, *, eps, eps_root):
    # max(scale, tiny): one operation per element that turns 0/0 into 0 and changes nothing
    # else unless the scale is subnormal (compile time grows with the operations per leaf).
    scale = jnp.sqrt(denominator + eps_root) + eps
    return numerator / jnp.maximum(scale, jnp.finfo(scale.dtype).tiny)


@public
def divide_by_sqrt(numerator, denominator, *, eps: ScalarOrSchedule = 0.0,
                   eps_root: ScalarOrSchedule = 0.0,
                   hyperparam_name=None) -> GradientTransformation:
    """``out = N(u) / (√(D(u) + eps_root) + eps)`` for two sub-chains ``N`` and ``D``.

    The preconditioner of Adagrad, RMSProp, Adam and their kin. ``eps`` outside the root is the
    torch/Adam convention; ``eps_root`` inside it is Optax's ``eps_in_sqrt`` convention (and keeps
    the gradient of the root finite at ``D = 0``).

    ``0 / 0`` is 0: with ``eps = eps_root = 0`` a leaf that has seen only zero gradients
    (``N = D = 0``) gets a zero update, not NaN (Optax's ``scale_by_rss`` gives 0 there too;
    its Adam and RMSProp give NaN). The divisor is ``max(√(D + eps_root) + eps, tiny)``, the
    smallest normal number of its dtype, so a non-zero numerator over a zero denominator is
    ``N / tiny`` (±inf once that overflows) and only a subnormal divisor is changed.

    Args:
      numerator: transformation giving the numerator (``identity()`` for the raw gradient,
        a bias-corrected EMA for Adam).
      denominator: transformation giving the second-moment statistic under the root.
      eps: added after the square root, ``>= 0``.
      eps_root: added inside the square root, ``>= 0``.
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``;
        RMSProp with ε inside the root stores ``eps_root`` as its ``eps``).

    Returns:
      A ``GradientTransformation`` whose state is a ``BranchState`` holding the numerator's
      and the denominator's states (``branches``) and ``eps``, ``eps_root`` (``hyperparams``).

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.divide_by_sqrt(gc.identity(), gc.square())  # g / |g|: sign descent
      >>> params = {"w": jnp.array([1.0, 1.0])}
      >>> updates, _ = tx.update({"w": jnp.array([4.0, -0.25])}, tx.init(params), params)
      >>> updates["w"].tolist()
      [1.0, -1.0]
    """
    check_transformations("divide_by_sqrt", {"numerator": numerator, "denominator": denominator})
    names = state_names("divide_by_sqrt", hyperparam_name, ("eps", "eps_root"))
    check_range("divide_by_sqrt", names["eps"], eps, 0)
    check_range("divide_by_sqrt", names["eps_root"], eps_root, 0)
    arguments = {key: argument for argument, key in names.items()}

    def combine(n, d, **hp):
        return _divide(n, d, **{arguments[key]: value for key, value in hp.items()})

    return branch(numerator, denominator, combine=combine, name="divide_by_sqrt",
                  **{names["eps"]: eps, names["eps_root"]: eps_root})
