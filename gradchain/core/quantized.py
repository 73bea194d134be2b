"""8-bit block-wise quantized statistics: a state dtype that stores one byte per element.

After Dettmers et al. 2022 ("8-bit Optimizers via Block-wise Quantization"). A statistic leaf
``x`` (Adam's ``m`` or ``v``, a momentum buffer, Adagrad's sum) is split, in row-major order,
into blocks of ``block_size`` elements (the last block padded with zeros); each block keeps
its absolute maximum ``A`` as one float32 scale and each element one uint8 code ``c`` of
``x / A`` in a *dynamic* code, so that ``x ≈ A · T[c]``.

The dynamic code (the paper's dynamic tree quantization, in the variant written here): a code
is a sign bit (signed code only), a run of ``e`` zero bits (the decade: magnitudes in
``[10^-(e+1), 10^-e]``), an indicator bit 1, and ``f`` fraction bits ``j`` spread linearly
over that decade: ``|T| = 10^-(e+1) + (10^-e - 10^-(e+1)) · (j + 1) / 2^f``. So every block
represents its absmax ``±A`` exactly, values within a decade are rounded to the nearest of
``2^f`` evenly spaced levels, and small values keep some relative precision down to
``10^-6 A`` (signed) or ``10^-8 A`` (unsigned) instead of vanishing as in a linear code.

- signed code (first moments, momentum): 1 sign bit, decades ``e = 0..6`` with ``6 - e``
  fraction bits, the last one reaching down to 0 (the all-zero code): 127 magnitudes of each
  sign and 0;
- unsigned code (second moments, sums of squares: non-negative statistics): the sign bit
  becomes one more fraction bit, decades ``e = 0..7`` with ``7 - e`` fraction bits: 256 levels,
  twice as fine, from ``10^-8`` to 1. It has no zero on purpose (Li et al. 2023, "Memory
  Efficient Optimizers with 4-bit States", the zero-point problem): a second moment rounded to
  0 under a non-zero first moment would make Adam's step ``m̂ / ε``; the lowest level
  ``10^-8 A`` bounds it instead. A block that is all zeros (``A = 0``) still decodes to 0.

Each block picks its code when it is encoded: the unsigned one when all its values are
``>= 0``, else the signed one. The choice is stored as the sign of the block's scale (``-A``:
unsigned), so it costs no bytes, needs no option, and a statistic that is non-negative by
construction (``v``) gets the finer code everywhere. Encoding rounds to the nearest level
(computed, not searched: the decade from comparisons with powers of ten, then one rounding),
so the error of an element is at most half the gap between the two levels around it
(``0.9 · 10^-e · A / 2^(f+1)``), at most ``0.9 A / 128`` (signed) or ``0.9 A / 256``
(unsigned), in the top decade; an unsigned value below ``10^-8 A`` becomes ``10^-8 A``.

Leaves of fewer than ``min_size`` elements stay float32: biases and normalisation scales are a
small share of a model's parameters, and quantizing them saves little memory.

The quantized statistic is a ``QuantizedArray(codes, scales)`` pytree: ``codes`` uint8 in the
leaf's shape (so it shards and checks like the params), ``scales`` float32 of shape
``(ceil(size / block_size),)``. It checkpoints like any state. Inside ``update`` the statistic
is decoded to float32, the primitive's rule runs as for a float32 statistic, and the new value
is encoded again, all in the same jitted step (no float32 copy of the state is kept between
steps).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.dtypes import is_complex, statistic_dtypes
from gradchain.core.paths import format_path
from gradchain.core.hyperparams import cast
from gradchain.core.validation import check_steps
from gradchain.wrappers.labels import _is_variable, unwrap

DECODED_DTYPE = jnp.float32


class QuantizedArray(NamedTuple):
    """One quantized statistic leaf: ``x ≈ |scales[b]| · T[codes]`` over each block ``b``."""

    codes: jax.Array
    scales: jax.Array


def _decades(signed: bool) -> list[tuple[float, float, int]]:
    """``(lower end, top, levels)`` of each decade ``e`` of a code: magnitudes in
    ``[lower, top]`` spaced by ``(top - lower) / levels``. Signed: decades 0..6 with
    ``2^(6-e)`` levels, the last reaching down to 0. Unsigned: decades 0..7 with ``2^(7-e)``
    levels, the last reaching down to ``10^-8``, its lowest level (the code has no zero)."""
    top_bits, count = (6, 7) if signed else (7, 8)
    return [(0.0 if signed and e == count - 1 else 10.0 ** -(e + 1), 10.0 ** -e,
             2 ** (top_bits - e)) for e in range(count)]


def code_table(signed: bool) -> np.ndarray:
    """The 256 values ``T[c]`` of the signed or unsigned code (float64), indexed by code."""
    decades = _decades(signed)
    magnitudes = np.full(2 * decades[0][2], decades[-1][0])  # code 0: the lowest level
    for r in range(1, magnitudes.size):
        f = int(math.log2(r))
        lower, top, levels = decades[len(decades) - 1 - f]
        magnitudes[r] = lower + (top - lower) * (r - levels + 1) / levels
    return magnitudes if not signed else np.concatenate([magnitudes, -magnitudes])


# Decoding looks codes up in one table: the signed code's values at 0..255, the unsigned one's
# at 256..511.
_TABLE = np.concatenate([code_table(True), code_table(False)]).astype(np.float32)


def _nearest_codes(y, unsigned):
    """Nearest codes (int32) of ``y`` in ``[-1, 1]``, in the unsigned code where ``unsigned``.

    The decade comes from comparisons with powers of ten; its ``lower``, ``1 / spacing`` and
    level count are selected alongside (selects fuse into one loop; a table lookup per element
    does not), then one rounding gives the level: ``r = levels - 1 + round((|y| - lower) /
    spacing)``, where ``levels - 1`` is the code of the decade's lower end. The unsigned code
    has twice the levels of the signed one in each decade, so the selects run on the signed
    code's constants, and an unsigned element's ``1 / spacing`` and ``levels`` are doubled
    (exact in float32); only the lowest decades, where the codes differ otherwise, select per
    element.
    """
    magnitude = jnp.abs(y)

    def constants(e):
        lower, inverse, levels = _decade_constants(False, e)
        halved = (lower, inverse / np.float32(2), levels / np.float32(2))
        return [s if s == u else jnp.where(unsigned, u, s)
                for s, u in zip(_decade_constants(True, e), halved)]

    lower, inverse_spacing, levels = constants(0)
    for e in range(1, 8):
        inside = magnitude <= np.float32(10.0 ** -e)
        if e == 7:  # the signed code has 7 decades, the unsigned one 8
            inside = inside & unsigned
        lower, inverse_spacing, levels = (
            jnp.where(inside, new, old) for new, old in
            zip(constants(e), (lower, inverse_spacing, levels)))
    finer = jnp.where(unsigned, np.float32(2), np.float32(1))
    r = levels * finer - 1 + jnp.floor((magnitude - lower) * (inverse_spacing * finer) + 0.5)
    r = jnp.clip(r, 0, 128 * finer - 1).astype(jnp.int32)
    return jnp.where((y < 0) & (r > 0), r + 128, r)


def _decade_constants(signed: bool, e: int) -> tuple:
    """float32 ``(lower, 1 / spacing, levels)`` of decade ``e`` (the last decade past it)."""
    decades = _decades(signed)
    lower, top, levels = decades[min(e, len(decades) - 1)]
    return np.float32(lower), np.float32(levels / (top - lower)), np.float32(levels)


def _block_extremes(flat, block_size: int):
    """Per block of the 1-D ``flat``: its largest and smallest value, in one reduction over
    ``flat`` zero-padded to ``(blocks, block_size)`` (zeros change neither ``absmax`` nor the
    sign of the minimum). One reduction with two results, where two reductions would each
    want the padded blocks written out first (XLA's CPU backend hands a single max or min to
    its own kernel, which reads a materialised array; a two-result reduction it fuses with the
    padding and with the computation of ``flat`` itself)."""
    blocks = jnp.pad(flat, (0, -flat.size % block_size)).reshape(-1, block_size)
    return jax.lax.reduce((blocks, blocks), (np.float32(-np.inf), np.float32(np.inf)),
                          lambda a, b: (jnp.maximum(a[0], b[0]), jnp.minimum(a[1], b[1])), (1,))


def _per_element(per_block, block_size: int, size: int):
    """A per-block array repeated over each block's elements: ``size`` values, 1-D (a
    broadcast, which fuses into the elementwise loop that reads it)."""
    return jnp.broadcast_to(per_block[:, None], (per_block.size, block_size)).reshape(-1)[:size]


@dataclasses.dataclass(frozen=True)
class Quantized:
    """The quantized state format returned by ``quantized``; pass it as a state dtype."""

    bits: int
    block_size: int
    min_size: int

    dtype = DECODED_DTYPE  # what a statistic in this format decodes to

    def __repr__(self) -> str:
        return (f"quantized(bits={self.bits}, block_size={self.block_size}, "
                f"min_size={self.min_size})")

    def store(self, x):
        """A new statistic leaf holding ``x``: a ``QuantizedArray``, or float32 if small."""
        if jnp.size(x) < self.min_size:
            return jnp.asarray(x, DECODED_DTYPE)
        return self.encode(x)

    def encode(self, x) -> QuantizedArray:
        """Flat, unpadded passes over ``x``: one reduction for the blocks' extremes, then one
        elementwise loop (per-block values broadcast into it) for the codes, ``x / A`` taken
        as ``x · (1 / A)`` with one reciprocal per block."""
        flat = jnp.ravel(jnp.asarray(x, DECODED_DTYPE))
        largest, smallest = _block_extremes(flat, self.block_size)
        absmax, unsigned = jnp.maximum(largest, -smallest), smallest >= 0
        inverse = 1 / jnp.where(absmax > 0, absmax, 1)
        codes = _nearest_codes(flat * _per_element(inverse, self.block_size, flat.size),
                               _per_element(unsigned, self.block_size, flat.size))
        return QuantizedArray(codes.astype(jnp.uint8).reshape(jnp.shape(x)),
                              jnp.where(unsigned, -absmax, absmax))

    def decode(self, q: QuantizedArray):
        flat = jnp.ravel(q.codes).astype(jnp.int32)
        offset = _per_element(256 * (q.scales < 0).astype(jnp.int32), self.block_size, flat.size)
        scale = _per_element(jnp.abs(q.scales), self.block_size, flat.size)
        values = jnp.take(jnp.asarray(_TABLE), flat + offset, mode="clip") * scale
        return values.reshape(q.codes.shape)


def quantized(bits: int = 8, block_size: int = 256, *, min_size: int = 4096) -> Quantized:
    """A block-wise 8-bit state format, accepted wherever a state dtype is.

    ``adam(lr, mu_dtype=quantized(), nu_dtype=quantized())`` keeps Adam's two moments in about
    2 bytes per parameter instead of 8. Also ``ema(..., dtype=)``, ``accumulate(dtype=)``,
    ``scale_by_momentum(accumulator_dtype=)`` and every optimizer's ``*_dtype`` of a statistic.
    See this module's docstring for the code and its error bound.

    Args:
      bits: bits per element; 8, the only width implemented (codes are bytes; narrower codes
        would need packing to save memory).
      block_size: elements per float32 scale, an integer ``>= 1``. Default 256: the scales
        cost ``4 / block_size`` bytes per element (0.016 at 256; 0.002 at the paper's 2048),
        and a smaller block confines an outlier's loss of precision to fewer neighbours.
      min_size: leaves with fewer elements keep a float32 statistic (default 4096).

    Returns:
      A ``Quantized`` format, to pass as a state dtype; statistics stored in it are
      ``QuantizedArray(codes, scales)`` leaves.
    """
    if bits != 8 or isinstance(bits, bool):
        raise ValueError(f"quantized: bits={bits!r} is not supported; expected bits=8 (codes are "
                         "stored one per byte)")
    block_size = check_steps("quantized", "block_size", block_size, 1, what="elements")
    min_size = check_steps("quantized", "min_size", min_size, 0, what="elements")
    return Quantized(8, block_size, min_size)


def is_quantized(x) -> bool:
    return isinstance(x, QuantizedArray)


def state_dtype(dtype):
    """A state dtype option as used: None, a ``jnp.dtype``, or a ``Quantized`` format."""
    if dtype is None or isinstance(dtype, Quantized):
        return dtype
    return jnp.dtype(dtype)


def compute_view(dtype):
    """The floating dtype a state dtype option computes in: a format's decoded dtype."""
    dtype = state_dtype(dtype)
    return dtype.dtype if isinstance(dtype, Quantized) else dtype


def init_stats(stat_init, params, dtype, *, owner: str, real: bool = False):
    """``stat_init(leaf, dtype)`` for each leaf of ``params``, in the state format ``dtype``
    (None: each leaf's dtype; a real or complex dtype as ``core.dtypes.statistic_dtypes`` rules
    for complex leaves, ``real``: a statistic of ``|g|²``). A quantized statistic is a pair of
    arrays, which a Flax Variable (``nnx.Optimizer`` gives ``init`` its ``Param``s) cannot
    hold: it replaces the Variable. Its codes are real, so a complex statistic (a complex
    leaf's first moment) is refused, naming ``owner`` and the leaf."""
    if isinstance(dtype, Quantized):
        def store(path, p):
            p = unwrap(p)
            if not real and is_complex(jnp.result_type(p)):
                raise TypeError(f"{owner}: params leaf at {format_path(path)} is "
                                f"{jnp.result_type(p)}; a quantized(...) statistic holds real "
                                "values, so a complex leaf's statistic of g cannot be "
                                "quantized (quantize only its real second moment, nu_dtype)")
            return dtype.store(stat_init(p, DECODED_DTYPE))
        return jax.tree_util.tree_map_with_path(store, params, is_leaf=_is_variable)
    return jax.tree.map(stat_init, params, statistic_dtypes(owner, params, dtype, real=real))


def load(stat, dtype):
    """A statistic leaf as an array: decoded if quantized."""
    return dtype.decode(stat) if is_quantized(stat) else stat


def save(value, stat, dtype):
    """``value`` stored as the statistic leaf ``stat`` was: re-encoded, or cast to its dtype."""
    return dtype.encode(value) if is_quantized(stat) else cast(value, stat.dtype)


def codes_view(stat):
    """``stat`` with each quantized leaf replaced by its codes (the leaf's shape), for tree and
    shape checks against the updates."""
    return jax.tree.map(lambda s: s.codes if is_quantized(s) else s, stat, is_leaf=is_quantized)
