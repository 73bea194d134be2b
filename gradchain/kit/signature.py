"""Which named inputs a rule asks for: read from its signature, once, when it is built."""

from __future__ import annotations

import inspect
from typing import Callable, NamedTuple


class Wants(NamedTuple):
    """The keyword inputs of a function: ``names`` (those it names), ``required`` (those
    without a default) and ``everything`` (it also takes ``**kwargs``: it is given all)."""
    names: tuple
    required: tuple
    everything: bool = False


def wants(fn: Callable, *, skip_first: bool) -> Wants:
    """The inputs ``fn`` takes by name (after its first parameter when ``skip_first``: the
    updates leaf). A function whose signature cannot be read (a builtin) takes none."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return Wants((), ())
    if skip_first and parameters and parameters[0].kind in (
            inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        parameters = parameters[1:]
    named = [p for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                  inspect.Parameter.KEYWORD_ONLY)]
    required = tuple(p.name for p in named if p.default is inspect.Parameter.empty)
    everything = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    return Wants(tuple(p.name for p in named), required, everything)


def pick(owner: str, what: str, available: dict, wanted: Wants) -> dict:
    """The entries of ``available`` that ``wanted`` names (all for ``**kwargs``); a required
    name that is not available raises ``TypeError`` listing what is."""
    missing = [k for k in wanted.required if k not in available]
    if missing:
        raise TypeError(f"{owner}: the {what} asks for {missing}, which is none of the inputs "
                        f"it can be given: {sorted(available)}")
    if wanted.everything:
        return available
    return {k: available[k] for k in wanted.names if k in available}
