"""Dtypes of complex leaves: ``|x|²``, the real dtype of a complex one, a statistic's dtype.

Complex params follow Optax's conventions. A statistic of the gradient itself (a first moment,
a momentum buffer) is complex, like the gradient; a statistic of ``|g|²`` (a second moment, a
running maximum or sum of squares) is real, in the precision of the params: complex64 params
keep float32 second moments (Optax keeps them complex with a zero imaginary part, the same
numbers in twice the memory). Hyperparameters are real: a complex64 leaf is updated in complex64
with float32 scalars, a complex128 leaf in complex128 with float64 scalars.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradchain.core.paths import format_path

SECOND_MOMENT_INPUT = ("its input is a second moment, which is real: build it from square() "
                       "(|g|²) and ema(..., real=True) or accumulate(real=True)")
"""Why the primitives that take a second moment (``max_v``, ``clip_lr``,
``rectified_step_size``) refuse complex input, and how to build a real one."""

_COMPLEX_OF = {jnp.dtype(jnp.float32): jnp.dtype(jnp.complex64),
               jnp.dtype(jnp.float64): jnp.dtype(jnp.complex128)}


def is_complex(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.complexfloating)


def real_dtype(dtype):
    """The dtype of the real part: float32 for complex64, float64 for complex128, else
    ``dtype`` itself."""
    dtype = jnp.dtype(dtype)
    return jnp.finfo(dtype).dtype if is_complex(dtype) else dtype


def complex_dtype(owner: str, dtype, where: str = ""):
    """The complex dtype of ``dtype``'s precision: complex64 for float32 or complex64,
    complex128 for float64; ``TypeError`` for a precision no complex dtype has (bfloat16,
    float16)."""
    dtype = jnp.dtype(dtype)
    if is_complex(dtype):
        return dtype
    if dtype not in _COMPLEX_OF:
        raise TypeError(f"{owner}: dtype={dtype} cannot hold the complex values of "
                        f"{where or 'a complex leaf'}; there is no complex {dtype}: give "
                        "float32/complex64 or float64/complex128")
    return _COMPLEX_OF[dtype]


def statistic_dtype(owner: str, leaf_dtype, option=None, *, real: bool = False,
                    where: str = ""):
    """The dtype of a statistic kept for a leaf of dtype ``leaf_dtype``.

    ``option`` (a ``dtype=``/``mu_dtype=`` argument, None for the leaf's dtype) sets the
    precision; the kind follows the statistic: real for a real leaf or a real statistic
    (``real=True``: a statistic of ``|g|²``), complex for a complex leaf's statistic of ``g``.
    So ``mu_dtype=float32`` keeps a complex64 first moment for complex64 params, and
    ``nu_dtype=float32`` (or ``complex64``) a float32 second moment.
    """
    precision = jnp.dtype(leaf_dtype if option is None else option)
    if real or not is_complex(leaf_dtype):
        return real_dtype(precision)
    return complex_dtype(owner, precision, where)


def statistic_dtypes(owner: str, params, option=None, *, real: bool = False):
    """``statistic_dtype`` of every leaf of ``params`` (a tree of dtypes); an error names the
    leaf's path."""
    return jax.tree_util.tree_map_with_path(
        lambda path, p: statistic_dtype(owner, jnp.result_type(p), option, real=real,
                                        where=f"params leaf at {format_path(path)}"), params)


def abs_sq(x):
    """``|x|²``, real: ``x²`` for a real ``x``, ``Re(x)² + Im(x)²`` for a complex one."""
    x = jnp.asarray(x)
    if is_complex(x.dtype):
        return jnp.square(x.real) + jnp.square(x.imag)
    return jnp.square(x)
