"""A traced function read as scalar work plus one per-element program per leaf.

``split(closed_jaxpr)`` inlines nested ``jit`` and custom-derivative calls and sorts every
equation into one of two kinds:

- **scalar**: all operands and results have shape ``()`` (step counts, bias corrections,
  hyperparameters, schedules); any primitive may appear, and they run in XLA as traced;
- **per-element**: a primitive in ``KERNEL_PRIMITIVES`` whose array operands and results all
  have the same number of elements, and whose other operands are scalars or literals.

The per-element equations fall into connected pieces (one per leaf for an optimizer: the
gradient, the param and the moments of one leaf meet in one piece). Each piece becomes a
``Program``: its inputs by position, the scalars it reads, its operations and its results.
Pieces with equal programs (same operations, dtypes and literals; any sizes) share one
compiled kernel. Anything else on an array (a reduction, a dot, a shape change that moves
elements, a transcendental function whose CPU value may differ from XLA's) makes ``split``
return ``None``, and the caller runs the function as it is.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import jax
from jax.extend import core as jex_core

# Primitives with one C++ spelling that gives XLA:CPU's result to the bit (see
# ``cpu_kernels.py``; tests/test_one_pass.py checks every one against XLA). Not ``rsqrt``, nor
# a division by a square root (which XLA rewrites to a product with ``rsqrt``): XLA:CPU
# computes ``rsqrt`` with an approximation of its own, not as ``1 / sqrt``.
KERNEL_PRIMITIVES = frozenset({
    "add", "sub", "mul", "div", "neg", "max", "min", "abs", "sign", "sqrt",
    "square", "integer_pow", "select_n", "eq", "ne", "lt", "le", "gt", "ge", "and", "or",
    "not", "convert_element_type", "copy", "copy_p", "is_finite", "reshape",
    "squeeze", "expand_dims", "broadcast_in_dim",
})
KERNEL_DTYPES = frozenset({"float32", "float64", "int32", "int64", "uint32", "uint8", "bool"})
_INLINED = {"jit": "jaxpr", "pjit": "jaxpr", "custom_jvp_call": "call_jaxpr",
            "custom_vjp_call": "call_jaxpr", "closed_call": "call_jaxpr"}
# Integer arithmetic wraps in XLA and is undefined on overflow in C++: floats only.
_FLOAT_ONLY = frozenset({"add", "sub", "mul", "div", "neg", "sqrt", "square", "integer_pow",
                         "sign", "abs"})
_PASS_THROUGH = frozenset({"copy", "copy_p", "reshape", "squeeze", "expand_dims"})


@dataclass(frozen=True)
class Literal:
    """A constant operand: its value and dtype name."""
    value: object
    dtype: str


@dataclass
class Equation:
    primitive: object
    params: dict
    inputs: list        # variable ids (int) or Literal
    outputs: list       # variable ids


@dataclass(frozen=True)
class Program:
    """One piece's per-element work, independent of its size; equal programs (same fields)
    run as one kernel, and a program is its kernel's key.

    ``inputs``: dtypes of the arrays it reads; ``scalars``: dtypes of the scalars it reads;
    ``ops``: ``(primitive name, static params, operands)`` with operands ``("in", k)``,
    ``("scalar", k)``, ``("tmp", k)`` (result of op k) or ``("lit", value, dtype)`` (a float
    literal's value as its ``float.hex()`` text);
    ``results``: operands, one per array it writes; ``result_dtypes`` their dtypes;
    ``solitary``: the scalars that one array operation of the whole function reads (XLA
    rewrites a division by such a scalar, ``cpu_kernels._as_xla_simplifies``).
    """
    inputs: tuple
    scalars: tuple
    ops: tuple
    results: tuple
    result_dtypes: tuple
    solitary: tuple = ()


@dataclass
class Piece:
    """One connected piece: its program and the variable ids that feed and leave it."""
    program: Program
    input_vars: list
    scalar_vars: list
    result_vars: list


@dataclass
class Split:
    """``scalar_eqns`` run first (in XLA); each piece then runs as a kernel."""
    avals: list
    input_vars: list        # the function's flat inputs, its consts, then inner consts
    const_values: list      # values of the inner consts (those of inlined calls)
    scalar_eqns: list
    pieces: list
    outputs: list           # variable ids or Literal, the function's flat outputs


class _Unsupported(Exception):
    """Why a function cannot run as scalar work plus per-element kernels."""


@functools.lru_cache(maxsize=None)
def dtype_name(dtype) -> str:
    """``float32``, ...; a dtype numpy cannot name (a PRNG key's) by its own text."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def _dtype(aval) -> str:
    return dtype_name(aval.dtype)


def _flatten(closed) -> tuple[list, list, list, list, list]:
    """Inline nested calls: (avals, input ids, const values, equations, output refs)."""
    avals, eqns, const_values, const_ids = [], [], [], []

    def new(aval):
        avals.append(aval)
        return len(avals) - 1

    def walk(jaxpr, const_refs, input_refs):
        env = {}

        def read(atom):
            if isinstance(atom, jex_core.Literal):
                return Literal(atom.val, _dtype(atom.aval))
            return env[atom]

        for var, ref in zip(jaxpr.constvars, const_refs):
            env[var] = ref
        for var, ref in zip(jaxpr.invars, input_refs):
            env[var] = ref
        for eqn in jaxpr.eqns:
            operands = [read(atom) for atom in eqn.invars]
            inner_key = _INLINED.get(eqn.primitive.name)
            inner = eqn.params.get(inner_key) if inner_key else None
            if inner is not None:
                inner_closed = (inner if hasattr(inner, "consts")
                                else jex_core.ClosedJaxpr(inner, ()))
                refs = walk(inner_closed.jaxpr, [const(c) for c in inner_closed.consts], operands)
                for var, ref in zip(eqn.outvars, refs):
                    env[var] = ref
                continue
            outs = [new(var.aval) for var in eqn.outvars]
            eqns.append(Equation(eqn.primitive, dict(eqn.params), operands, outs))
            for var, ref in zip(eqn.outvars, outs):
                env[var] = ref
        return [read(atom) for atom in jaxpr.outvars]

    def const(value):
        array = np.asarray(value) if not hasattr(value, "aval") else value
        ident = new(jax.core.ShapedArray(np.shape(array), array.dtype))
        const_ids.append(ident)
        const_values.append(value)
        return ident

    inputs = [new(var.aval) for var in closed.jaxpr.invars]
    top_consts = [const(c) for c in closed.consts]
    outputs = walk(closed.jaxpr, top_consts, inputs)
    return avals, inputs + const_ids, const_values[len(top_consts):], eqns, outputs


def _size(aval) -> int:
    return math.prod(aval.shape)


def _static_params(eqn: Equation) -> tuple:
    name = eqn.primitive.name
    if name == "integer_pow":
        return (("y", int(eqn.params["y"])),)
    if name == "convert_element_type":
        return (("new_dtype", np.dtype(eqn.params["new_dtype"]).name),)
    return ()


def split(closed) -> tuple[Split | None, str | None]:
    """``(split, None)``: ``closed``'s work as scalar equations plus per-element pieces; or
    ``(None, reason)``, the first operation on arrays that cannot run per element."""
    try:
        return _split(closed), None
    except _Unsupported as unsupported:
        return None, str(unsupported)


def _split(closed) -> Split:
    avals, input_ids, const_values, eqns, outputs = _flatten(closed)
    is_array = [bool(a.shape) for a in avals]
    scalar_eqns, array_eqns, produced_by = [], [], {}
    for eqn in eqns:
        refs = [r for r in eqn.inputs if not isinstance(r, Literal)] + eqn.outputs
        if not any(is_array[r] for r in refs):
            scalar_eqns.append(eqn)
            continue
        name = eqn.primitive.name
        if name not in KERNEL_PRIMITIVES:
            raise _Unsupported(f"{name} on an array")
        sizes = {_size(avals[r]) for r in refs if is_array[r]}
        if len(sizes) != 1 or not all(is_array[r] for r in eqn.outputs):
            raise _Unsupported(f"{name} changes the number of elements")
        dtypes = {_dtype(avals[r]) for r in refs} | {r.dtype for r in eqn.inputs
                                                     if isinstance(r, Literal)}
        if not dtypes <= KERNEL_DTYPES:
            raise _Unsupported(f"{name} on {sorted(dtypes - KERNEL_DTYPES)}")
        out_dtypes = {_dtype(avals[r]) for r in eqn.outputs}
        if name in _FLOAT_ONLY and not out_dtypes <= {"float32", "float64"}:
            raise _Unsupported(f"{name} on integers")
        if name == "convert_element_type":
            operand = eqn.inputs[0]
            source = operand.dtype if isinstance(operand, Literal) else _dtype(avals[operand])
            target = np.dtype(eqn.params["new_dtype"]).name
            if source.startswith("float") and not (target.startswith("float") or target == "bool"):
                raise _Unsupported("float to integer conversion")
        if name == "div" and _divides_by_sqrt(eqn, produced_by):
            raise _Unsupported("a division by a square root")
        array_eqns.append(eqn)
        produced_by.update((r, eqn) for r in eqn.outputs)

    # Union-find over array variables: a piece is what one chain of equations connects.
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for eqn in array_eqns:
        refs = [r for r in eqn.inputs + eqn.outputs if not isinstance(r, Literal) and is_array[r]]
        for r in refs[1:]:
            parent[find(r)] = find(refs[0])

    wanted = [r for r in outputs
              if not isinstance(r, Literal) and is_array[r] and r in produced_by]
    groups: dict[int, list] = {}
    for eqn in array_eqns:
        groups.setdefault(find(eqn.outputs[0]), []).append(eqn)

    results_of: dict[int, dict] = {}
    for r in wanted:
        results_of.setdefault(find(r), {})[r] = None
    scalar_uses = Counter(r for eqn in array_eqns for r in eqn.inputs
                          if not isinstance(r, Literal) and not is_array[r])
    pieces = [_piece(piece_eqns, list(results_of[root]), avals, is_array, scalar_uses)
              for root, piece_eqns in groups.items() if root in results_of]
    return Split(avals, input_ids, const_values, scalar_eqns, pieces, outputs)


def _divides_by_sqrt(eqn: Equation, produced_by: dict) -> bool:
    divisor = eqn.inputs[1]
    while not isinstance(divisor, Literal) and divisor in produced_by:
        producer = produced_by[divisor]
        if producer.primitive.name == "sqrt":
            return True
        if producer.primitive.name not in _PASS_THROUGH:
            return False
        divisor = producer.inputs[0]
    return False


def _piece(eqns, results, avals, is_array, scalar_uses) -> Piece:
    input_vars, scalar_vars, temps, ops = [], [], {}, []

    def operand(ref):
        if isinstance(ref, Literal):
            return ("lit", _literal_value(ref), ref.dtype)
        if ref in temps:
            return ("tmp", temps[ref])
        if is_array[ref]:
            if ref not in input_vars:
                input_vars.append(ref)
            return ("in", input_vars.index(ref))
        if ref not in scalar_vars:
            scalar_vars.append(ref)
        return ("scalar", scalar_vars.index(ref))

    for eqn in eqns:
        operands = tuple(operand(r) for r in eqn.inputs)
        for out in eqn.outputs:
            temps[out] = len(ops)
            ops.append((eqn.primitive.name, _static_params(eqn), operands, _dtype(avals[out])))
    program = Program(
        inputs=tuple(_dtype(avals[r]) for r in input_vars),
        scalars=tuple(_dtype(avals[r]) for r in scalar_vars),
        ops=tuple(ops),
        results=tuple(("tmp", temps[r]) for r in results),
        result_dtypes=tuple(_dtype(avals[r]) for r in results),
        solitary=tuple(k for k, r in enumerate(scalar_vars) if scalar_uses[r] == 1))
    return Piece(program, input_vars, scalar_vars, results)


def _literal_value(literal: Literal):
    """The literal as a program keeps it: an int or bool, or a float's exact ``float.hex()``
    text (as numbers ``0.0 == -0.0`` and a NaN is unequal to itself, so programs differing
    only in the sign of a zero would share one kernel)."""
    value = np.asarray(literal.value, dtype=literal.dtype)
    if value.shape:
        raise _Unsupported("an array literal")
    item = value.item()
    if isinstance(item, float) and 0 < abs(item) < np.finfo(value.dtype).tiny:
        # Compiled as a constant, XLA:CPU and the C++ compiler may each fold or flush it
        # their own way (found: max(-0, tiny / 4) is -0 in XLA's code, +0 in the kernel's).
        raise _Unsupported("a subnormal literal")
    return item.hex() if isinstance(item, float) else item
