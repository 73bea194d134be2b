"""One way to write a place in a tree: ``encoder/layers/0/kernel``.

Every message and every listing that names a place in a tree (a params or updates leaf, a part
of an optimizer state, a hyperparameter, a mask or label entry) writes it as the keys from the
root inwards, joined by ``/``: a dict key and an attribute or NamedTuple field as its plain name,
a sequence index as its number. The root itself is ``<root>``. So the learning rate of a chain's
third part is ``2/learning_rate`` and Adam's first moment inside a parameter group is
``inner_states/decay/1/branches/0/ema``. Addresses accepted as input (``set_hyperparams``,
``find_state(path=...)``) are written the same way.

Keys are written with ``str``, so the label ``1`` and the label ``"1"`` read alike; input that
names a sequence index by its digits finds it.
"""

from __future__ import annotations

from typing import Any

ROOT = "<root>"


def plain_key(key) -> Any:
    """The plain value of one JAX path key: a dict key, an attribute name, a sequence index
    (``DictKey``, ``GetAttrKey``, ``SequenceKey``, ``FlattenedIndexKey``); anything else as
    it is."""
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return getattr(key, attribute)
    return key


def path_keys(path) -> tuple:
    """``path`` (a JAX key path, or already a tuple of plain keys) as a tuple of plain keys."""
    return tuple(plain_key(k) for k in path)


def format_path(path) -> str:
    """``path`` (a JAX key path or a tuple of plain keys) as ``a/0/kernel``; ``<root>`` for the
    empty path."""
    return "/".join(str(k) for k in path_keys(path)) or ROOT


def split_path(path) -> tuple:
    """An address given as input, ``"a/0/kernel"`` or a tuple of keys, as a tuple of keys (the
    string's parts are strings: match them with ``key_matches``)."""
    if isinstance(path, str):
        return () if path in ("", ROOT) else tuple(path.split("/"))
    return tuple(path)


def key_matches(wanted, key) -> bool:
    """Whether the key ``wanted`` (from an address) names ``key`` (in a tree): equal, or
    written alike (``"0"`` names the index ``0``)."""
    return wanted == key or str(wanted) == str(key)
