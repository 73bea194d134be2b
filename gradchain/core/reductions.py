"""Reductions over leaves that may be split across devices (``shard_map``, ``pmap``).

A global norm, a block's RMS, a trust ratio or a non-finite check reduces over a whole leaf or
the whole tree. When the params (so the updates and the statistics) are split over a mesh axis,
each device holds a disjoint part of every leaf, and the same code run on it reduces over its
part only: a local norm instead of the norm. Every such transformation therefore takes
``axis_name`` (the name of the ``shard_map`` mesh axis or the ``pmap`` axis the leaves are split
over; JAX's name for it) and reduces in two steps: the sum of the per-leaf partial sums on the
device, then ``lax.psum`` of that over the axis. With ``axis_name=None`` (the default) the
second step is left out, so nothing changes for unsplit leaves.

The contract: every leaf the transformation sees is split over ``axis_name`` (devices hold
disjoint parts). A leaf replicated over the axis is counted once per device: means (block RMS)
and ratios of two norms of the same leaf (trust ratios, AGC, without their floors) come out
right all the same, a global norm does not.
"""

from __future__ import annotations

import functools
import operator
from typing import Sequence

import jax


def check_axis_name(owner: str, axis_name) -> None:
    """Refuse an ``axis_name`` that is not None, a string or a tuple of strings."""
    names = axis_name if isinstance(axis_name, tuple) else (axis_name,)
    if axis_name is not None and not (names and all(isinstance(n, str) for n in names)):
        raise TypeError(f"{owner}: axis_name={axis_name!r} is not a mesh axis name; expected "
                        "None (leaves not split), a string (the shard_map or pmap axis the "
                        "leaves are split over) or a tuple of strings")


def sum_over_devices(partials: Sequence, axis_name=None):
    """``Σ partials`` (each a leaf's partial sum on this device), then ``psum`` over
    ``axis_name`` when given; ``0.0`` for no partials."""
    total = functools.reduce(operator.add, partials, 0.0)
    return total if axis_name is None else jax.lax.psum(total, axis_name)


def shown_with_axis_name(shown: dict, axis_name) -> dict:
    """The hyperparameters a transformation's ``repr`` shows, with ``axis_name`` when given."""
    return dict(shown) if axis_name is None else {**shown, "axis_name": axis_name}
