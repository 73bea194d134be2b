"""What every transformation does around its own rule: the contract, in one place.

A transformation that keeps hyperparameters, a step count or a statistic per leaf owes its users
the same things, whatever its rule:

- floating-point leaves only (real or complex), the first offending tree path named;
- the updates checked against the statistic's tree (and the params', when it reads them), the
  first mismatching path named, instead of a broadcast or a cryptic XLA error;
- hyperparameters kept in the state (``gradchain.core.hyperparams``): schedules evaluated at
  the step count, constants under the "latest change wins" policy, values changeable with
  ``set_hyperparams`` without recompiling;
- a step count that saturates at the int32 maximum instead of wrapping, kept only when
  something reads it (a schedule, a rule that uses the step);
- scalars cast once per compute dtype (at least float32; real for complex leaves), not once
  per leaf.

``Contract`` does these steps; the kit's builders (``elementwise``, ``per_leaf``,
``cross_leaf``) and every built-in transformation with its own state layout (``lookahead``,
``switch_to_sgd``, ``reduce_on_plateau``, ``branch``) call it, so none re-implements them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax

from gradchain.core import quantized
from gradchain.core.hyperparams import Hyperparams, ScalarsByDtype, next_count, zero_count
from gradchain.core.updates import matching_params
from gradchain.core.validation import (check_floating, check_real, check_same_shapes,
                                       check_same_structure, structure_difference)


class Step(NamedTuple):
    """One update's view of the contract (``Contract.begin``).

    Attributes:
      values: the hyperparameters in force at this update, ``{name: scalar}``.
      stored: the ``hyperparams`` dict to put in the new state.
      count: the new step count (None when the transformation keeps none).
      step: the number of this update, 1 at the first (an int32 scalar; None when not counted).
      params: the params leaf matching each updates leaf (a list; all None without params).
    """
    values: dict
    stored: dict
    count: Optional[jax.Array]
    step: Optional[jax.Array]
    params: list


class Contract:
    """The checks and bookkeeping shared by every transformation (see the module docstring).

    Args:
      name: the transformation's name, used in errors.
      hyperparams: ``{name: number | array | schedule}``, kept in the state's ``hyperparams``.
      counts: keep a step count even when no hyperparameter is a schedule (the rule depends on
        the step: bias correction, a period).
      real_input: why complex updates are refused (None: they are accepted).
      names: ``{hyperparameter: state key}`` where the state stores one under another name
        (``core.hyperparams.state_names``); the values read are still given by hyperparameter.
    """

    def __init__(self, name: str, hyperparams: Optional[dict] = None, *, counts: bool = False,
                 real_input: Optional[str] = None, names: Optional[dict] = None):
        self.name = name
        self.hyper = Hyperparams(names, **(hyperparams or {}))
        self.counting = counts or self.hyper.scheduled()
        self.real_input = real_input

    @property
    def specs(self) -> dict:
        """The hyperparameters as given (numbers, arrays, schedules)."""
        return self.hyper.specs

    def check_params(self, params) -> None:
        """Refuse params that are not floating point. (Complex params are accepted even where
        complex updates are refused: a stage after ``square()`` sees real ``|g|²``.)"""
        check_floating(self.name, params)

    def init_count(self) -> Optional[jax.Array]:
        """The initial step count: 0, or None when nothing reads it."""
        return zero_count() if self.counting else None

    def init_hyperparams(self) -> dict:
        """The initial ``hyperparams`` dict of the state."""
        return self.hyper.init()

    def begin(self, updates, state, params=None, *, stat=None, per_element: bool = True,
              needs_params: bool = False, match_params: bool = False) -> Step:
        """Check ``updates`` (against ``stat``, a tree with a leaf or subtree per updates leaf,
        and the params) and read the hyperparameters of ``state`` at its count.

        ``per_element``: each statistic leaf has its updates leaf's shape (quantized leaves
        compared by their codes); otherwise ``stat`` holds any subtree per leaf.
        ``needs_params``: refuse an update without params. ``match_params``: return the params
        leaf of each updates leaf (checked to match), when params are given.
        """
        check_floating(self.name, updates, "updates")
        if self.real_input is not None:
            check_real(self.name, updates, "updates", self.real_input)
        if stat is not None:
            if per_element:
                codes = quantized.codes_view(stat)
                check_same_structure(self.name, updates, codes)
                check_same_shapes(self.name, updates, codes)
            else:
                check_prefix(self.name, updates, stat)
        if needs_params and params is None:
            raise ValueError(f"{self.name}: update needs params (call update(updates, state, "
                             "params))")
        leaves = matching_params(self.name, updates,
                                 params if needs_params or match_params else None)
        count = state.count if self.counting else None
        values, stored = self.hyper.read(state.hyperparams, count)
        new_count = next_count(count) if self.counting else None
        return Step(values, stored, new_count, new_count, leaves)

    @staticmethod
    def scalars(values: dict) -> ScalarsByDtype:
        """``values`` cast once per compute dtype: ``scalars(dtype)`` gives the dict."""
        return ScalarsByDtype(values)


def check_prefix(owner: str, updates, stat: Any) -> None:
    """Raise ``ValueError`` naming where ``stat`` does not hold one subtree per updates leaf."""
    try:
        jax.tree.structure(updates).flatten_up_to(stat)
    except (ValueError, TypeError):
        # A per-leaf subtree (a NamedTuple of rows and columns) is compared as one leaf: its
        # type is no container of the updates' tree.
        nodes = set()
        jax.tree.leaves(updates, is_leaf=lambda node: nodes.add(type(node)))
        difference = structure_difference(updates, stat, "optimizer state",
                                          is_leaf=lambda node: type(node) not in nodes)
        raise ValueError(f"{owner}: the updates do not match the optimizer state: "
                         f"{difference}") from None
