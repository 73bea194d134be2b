"""A ``Program`` (``programs.py``) as one compiled C++ loop behind an XLA FFI custom call.

``kernel_target(program)`` writes the program as C++, compiles it with the machine's C++
compiler against the FFI headers that ship with jaxlib (``jax.ffi.include_dir()``), loads it
and registers it as an XLA custom call for the CPU. It returns the target's name, or ``None``
when no compiler is found or the compile fails (the caller then runs XLA's own code).

One call of the target handles every leaf that runs the program: its operands are the step's
scalars packed into one array per dtype (the ``layout`` attribute says where each of the
program's scalars sits), then each leaf's arrays in turn; its results are each leaf's results
in turn, then any scalars the call copies out of the packs (the step's new counts and
hyperparameters, ``one_pass._execute``). The loop reads each element of every input once and
writes each result once, in chunks of ``_CHUNK`` elements shared with the threads of XLA's own
intra-op pool when the call has at least ``_PARALLEL_MIN`` elements.

Each primitive is spelled as XLA:CPU computes it, so the results equal XLA's to the bit:
IEEE ``+ - * /`` and ``sqrt`` without contraction into fused multiply-adds
(``-ffp-contract=off``), ``integer_pow`` as the same chain of multiplications jax lowers it
to, NaN-propagating ``max``/``min``, subnormals flushed to zero (as XLA:CPU runs), fused
multiply-adds where LLVM forms them in XLA's loops (``_contracted``),
and XLA's own rewrites of division (``_as_xla_simplifies``).
``tests/test_one_pass.py`` checks every primitive against XLA on NaN, ±0, ±inf and
subnormals.

Compiled libraries are kept in ``$GRADCHAIN_KERNEL_CACHE`` (default
``~/.cache/gradchain/kernels``), named by a digest of the source, the compiler command and
the machine's CPU flags, so a program compiles once per machine; the headers every kernel
includes are precompiled there once.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import jax
import numpy as np

from gradchain.execution.programs import Program

_C_TYPES = {"float32": "float", "float64": "double", "int32": "int32_t", "int64": "int64_t",
            "uint32": "uint32_t", "uint8": "uint8_t", "bool": "bool"}
_CHUNK = 1 << 15
_PARALLEL_MIN = 1 << 18
_BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "eq": "==", "ne": "!=",
           "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_CALLS = {"neg": "(-{0})", "abs": "std::abs({0})", "sqrt": "std::sqrt({0})",
          "square": "({0} * {0})", "sign": "gc_sign<{t}>({0})", "max": "gc_max<{t}>({0}, {1})",
          "min": "gc_min<{t}>({0}, {1})", "is_finite": "std::isfinite({0})"}
_IDENTITY = frozenset({"copy", "copy_p", "reshape", "squeeze", "expand_dims",
                       "broadcast_in_dim"})
_TARGETS: dict = {}
_LIBRARIES: list = []

_HEADERS = """#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <vector>
#include "xla/ffi/api/ffi.h"
"""

_PRELUDE = _HEADERS + r"""

namespace ffi = xla::ffi;

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
// XLA:CPU runs its code with subnormals flushed to zero (FTZ and DAZ); so does the kernel.
struct FlushSubnormals {
  unsigned int saved = _mm_getcsr();
  FlushSubnormals() { _mm_setcsr(saved | 0x8040u); }
  ~FlushSubnormals() { _mm_setcsr(saved); }
};
#elif defined(__aarch64__)
struct FlushSubnormals {
  uint64_t saved;
  FlushSubnormals() {
    asm volatile("mrs %0, fpcr" : "=r"(saved));
    asm volatile("msr fpcr, %0" : : "r"(saved | (uint64_t(1) << 24)));
  }
  ~FlushSubnormals() { asm volatile("msr fpcr, %0" : : "r"(saved)); }
};
#else
struct FlushSubnormals {};
#endif

// XLA:CPU's maximum, minimum and sign return a subnormal flushed to a signed zero.
template <typename T> static inline T gc_flushed(T x);
template <> inline float gc_flushed<float>(float x) {
  uint32_t bits;  // by its bits: with denormals-are-zero set, a comparison sees 0
  std::memcpy(&bits, &x, sizeof bits);
  return (bits & 0x7f800000u) == 0 ? std::copysign(0.0f, x) : x;
}
template <> inline double gc_flushed<double>(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return (bits & 0x7ff0000000000000ull) == 0 ? std::copysign(0.0, x) : x;
}
template <typename T> static inline T gc_max(T a, T b) {
  return gc_flushed<T>((a != a) ? a : ((b != b) ? b : (a > b ? a : (b > a ? b
                       : (std::signbit(a) ? b : a)))));
}
template <typename T> static inline T gc_min(T a, T b) {
  return gc_flushed<T>((a != a) ? a : ((b != b) ? b : (a < b ? a : (b < a ? b
                       : (std::signbit(a) ? a : b)))));
}
template <typename T> static inline T gc_sign(T a) {
  return a > T(0) ? T(1) : (a < T(0) ? T(-1) : gc_flushed<T>(a));
}
// x86 LLVM makes a max/min instruction of a select by a > b between a and b, which flushes
// the subnormal it returns; elsewhere the select stays a select.
#if defined(__x86_64__) || defined(__i386__)
template <typename T> static inline T gc_selected_bound(T x) { return gc_flushed<T>(x); }
#else
template <typename T> static inline T gc_selected_bound(T x) { return x; }
#endif
"""


def _literal(value, dtype: str) -> str:
    c_type = _C_TYPES[dtype]
    if dtype == "bool":
        return "true" if value else "false"
    if dtype.startswith("float"):
        value = float.fromhex(value)
        if np.isnan(value):
            return f"std::numeric_limits<{c_type}>::quiet_NaN()"
        if np.isinf(value):
            sign = "-" if value < 0 else ""
            return f"{sign}std::numeric_limits<{c_type}>::infinity()"
        return f"{c_type}({value.hex()})"
    return f"{c_type}({int(value)})"


def _integer_pow(x: str, y: int, c_type: str, lines: list, name: str) -> str:
    """jax's lowering of ``integer_pow``: square-and-multiply, then ``1 / acc`` if y < 0."""
    if y == 0:
        return f"{c_type}(1)"
    reciprocal, y = y < 0, abs(y)
    acc, base, step = None, x, 0
    while y > 0:
        if y & 1:
            if acc is None:
                acc = base
            else:
                lines.append(f"const {c_type} {name}_a{step} = {acc} * {base};")
                acc = f"{name}_a{step}"
        y >>= 1
        if y > 0:
            lines.append(f"const {c_type} {name}_b{step} = {base} * {base};")
            base = f"{name}_b{step}"
        step += 1
    return f"{c_type}(1) / {acc}" if reciprocal else acc


def _expression(name: str, params: tuple, args: list, dtype: str, lines: list,
                temp: str) -> str:
    c_type = _C_TYPES[dtype]
    params = dict(params)
    if name in _IDENTITY:
        return args[0]
    if name in _BINARY:
        return f"({args[0]} {_BINARY[name]} {args[1]})"
    if name in _CALLS:
        return _CALLS[name].format(*args, t=c_type)
    if name == "integer_pow":
        return _integer_pow(args[0], params["y"], c_type, lines, temp)
    if name == "select_n":
        which, cases = args[0], args[1:]
        expr = cases[-1]
        for k in range(len(cases) - 2, -1, -1):
            test = f"!{which}" if len(cases) == 2 else f"{which} == {k}"
            expr = f"({test} ? {cases[k]} : {expr})"
        return expr
    if name == "and":
        return f"({args[0]} && {args[1]})" if dtype == "bool" else f"({args[0]} & {args[1]})"
    if name == "or":
        return f"({args[0]} || {args[1]})" if dtype == "bool" else f"({args[0]} | {args[1]})"
    if name == "not":
        return f"(!{args[0]})" if dtype == "bool" else f"{c_type}(~{args[0]})"
    if name == "convert_element_type":
        return f"static_cast<{c_type}>({args[0]})"
    raise ValueError(f"no C++ spelling for primitive {name!r}")


def _fusions(program: Program) -> list:
    """The loops XLA:CPU would emit: ``(root, members, uses)`` per result, in order.

    XLA:CPU computes each result in its own loop fusion (it does not fuse loops with several
    outputs), recomputing every other intermediate inside each fusion that needs it. Another
    result it reads from memory, unless recomputing it there is cheap (no division or square
    root) and reads no array the fusion does not read already (``(a - c)**2`` and
    ``(a - c) - (a - c)**2``: the second loop squares again, and LLVM may contract that
    product where the first loop's could not be).
    ``members`` are the ops computed in the result's fusion; ``uses`` counts how often each is
    read inside it.
    """
    materialized = sorted({index for _, index in program.results})

    def computed(root, inlined):
        members, stack = set(), [root]
        while stack:
            index = stack.pop()
            if index in members:
                continue
            members.add(index)
            stack.extend(o[1] for o in program.ops[index][2]
                         if o[0] == "tmp" and (o[1] not in materialized or o[1] in inlined))
        return members

    def cheap(members):
        """No operation XLA counts as expensive (a division, a square root), which it does
        not compute twice."""
        return not any(program.ops[index][0] in ("div", "sqrt")
                       or (program.ops[index][0] == "integer_pow"
                           and dict(program.ops[index][1])["y"] < 0) for index in members)

    def arrays_read(members):
        return {o[1] for index in members for o in program.ops[index][2] if o[0] == "in"}

    def results_read(members):
        return {o[1] for index in members for o in program.ops[index][2]
                if o[0] == "tmp" and o[1] in materialized and o[1] not in members}

    fusions = []
    for root in materialized:
        inlined = set()
        members = computed(root, inlined)
        while True:
            reads = arrays_read(members)
            recomputed = {m: computed(m, inlined) for m in results_read(members)}
            more = {m for m, its in recomputed.items()
                    if cheap(its) and arrays_read(its) <= reads}
            if not more:
                break
            inlined |= more
            members = computed(root, inlined)
        uses = Counter(o[1] for index in members for o in program.ops[index][2]
                       if o[0] == "tmp" and o[1] in members)
        fusions.append((root, sorted(members), uses))
    return fusions


def _product_of_computed(program: Program, members: set, operand) -> bool:
    """Whether ``operand`` is a product of two values computed in the loop (not loaded)."""
    if operand[0] != "tmp" or operand[1] not in members:
        return False
    op_name, _, factors, _ = program.ops[operand[1]]
    if op_name == "square":
        factors = (factors[0], factors[0])
    elif op_name != "mul":
        return False
    return all(f[0] == "tmp" and f[1] in members for f in factors)


def _bound_by_literal(name: str, operands: tuple, dtype: str):
    """``(value, literal)`` when ``max``/``min`` of a value and a literal ``c`` can be one
    compare and select, ``c > x ? c : x`` (``<`` for ``min``), else None.

    ``gc_max``/``gc_min`` spell out XLA's semantics for any two operands (NaN first, the sign of
    zero, subnormals flushed) and cost the loop a third of its time where a guard such
    as ``max(scale, tiny)`` sits in it (measured: 0.77 against 0.52 ns per element for Adam's
    loop in cache). With ``c`` neither NaN, zero nor subnormal the select gives the same bits:
    a NaN ``x`` fails the comparison and is returned; ``x == c`` means equal bits; under
    denormals-are-zero a subnormal ``x`` compares as zero, on the same side of ``c`` as itself.
    XLA's results flush subnormals, so ``c`` must also lie on the side (positive for ``max``,
    negative for ``min``) where the ``x`` returned is never subnormal. ``max(x, -inf)`` and
    ``min(x, inf)`` XLA's simplifier removes (a subnormal ``x`` comes out as it is): then
    ``(value, None)``.
    """
    if name not in ("max", "min") or not dtype.startswith("float"):
        return None
    literals = [k for k, o in enumerate(operands) if o[0] == "lit"]
    if len(literals) != 1:
        return None
    c = float.fromhex(operands[literals[0]][1])
    if c == (-np.inf if name == "max" else np.inf):
        return operands[1 - literals[0]], None
    if np.isnan(c) or abs(c) < np.finfo(dtype).tiny:
        return None
    if (c < 0) if name == "max" else (c > 0):
        return None
    return operands[1 - literals[0]], operands[literals[0]]


def _selects_a_bound(program: Program, members: set, name: str, operands: tuple,
                     dtype: str) -> bool:
    """Whether ``operands`` select ``a`` or ``b`` by ``a > b`` or ``a < b`` computed in the same
    loop: x86 LLVM turns that select into a ``max``/``min`` instruction, which returns a
    subnormal operand flushed (as ``maxps`` does under denormals-are-zero), while the kernel's
    compiler may keep a compare and blend (``gc_selected_bound`` flushes on x86 only). ``>=``
    and ``<=`` stay selects (a maximum would order ``-0`` and ``+0`` otherwise)."""
    if name != "select_n" or len(operands) != 3 or not dtype.startswith("float"):
        return False
    predicate, if_false, if_true = operands
    if predicate[0] != "tmp" or predicate[1] not in members:
        return False
    compare, _, compared, _ = program.ops[predicate[1]]
    return compare in ("gt", "lt") and {if_false, if_true} == set(compared) and if_false != if_true


def _contracted(program: Program, members: set, uses: Counter, name: str, operands: tuple,
                dtype: str):
    """LLVM's contraction of ``a*b ± c`` into one fused multiply-add, as XLA:CPU allows it.

    XLA:CPU marks its floating-point operations contractible, and LLVM's DAG combiner then
    fuses ``fadd(fmul(x, y), z)`` into ``fma(x, y, z)`` when the product has no other use in
    the same loop, trying the first operand before the second (``fsub`` likewise, with ``z``
    or the product negated). The kernel makes the same choice, fusion by fusion, so its
    results equal XLA's to the bit. Returns ``(x, y, z, negate_product)``, or None.
    """
    if name not in ("add", "sub") or not dtype.startswith("float"):
        return None

    def product(operand):
        if operand[0] != "tmp" or operand[1] not in members or uses[operand[1]] != 1:
            return None
        op_name, _, factors, op_dtype = program.ops[operand[1]]
        if op_dtype != dtype or op_name not in ("mul", "square"):
            return None
        factors = factors if op_name == "mul" else (factors[0], factors[0])
        if any(_product_of_computed(program, members, f) for f in factors):
            return None
        return factors

    first, second = operands
    factors = product(first)
    if factors is not None:
        addend = second if name == "add" else ("neg", second)
        return factors[0], factors[1], addend, False
    factors = product(second)
    if factors is not None:
        return factors[0], factors[1], first, name == "sub"
    return None


def _operand_dtype(program: Program, ops: list, operand) -> str:
    kind = operand[0]
    if kind == "in":
        return program.inputs[operand[1]]
    if kind == "scalar":
        return program.scalars[operand[1]]
    if kind == "tmp":
        return ops[operand[1]][3]
    return operand[2]


def _literal_equals(operand, value: float) -> bool:
    return operand[0] == "lit" and float.fromhex(operand[1]) == value


def _as_xla_simplifies(program: Program) -> Program:
    """``program`` as XLA's simplifier leaves it, so that the kernel rounds where XLA:CPU's
    code rounds: equal operations merged into one (XLA's common-subexpression elimination,
    which changes how often a product is read, and so where it is contracted), and XLA's
    rewrites (measured on this jaxlib: without them the results differ in the last bit, or
    where a subnormal is flushed, or where ``x * x`` overflows):

    - ``a * convert(p)``, ``p`` boolean: ``select(p, a, 0)`` (so ``-0 * ...`` gives ``+0``);
    - ``a / c``, ``c`` a literal, or a scalar no other array operation reads: ``a * (1 / c)``
      (XLA computes the reciprocal with the scalar, or folds it for a literal; a scalar several
      leaves divide by stays a division);
    - ``(a / b) / (c / d)``: ``(a * d) / (b * c)``;
    - ``(a / b) / c``: ``a / (b * c)``;
    - ``a / (b / c)``: ``(a * c) / b``;
    - ``a + 0``, ``0 + a``, ``a - 0``, ``a * 1``, ``1 * a``: ``a`` (``-0 + 0`` stays ``-0``, a
      subnormal ``a`` stays unflushed);
    - ``max(a, a)``, ``min(a, a)``: ``a``; ``max(a, -a)``: ``abs(a)``; ``min(a, -a)``:
      ``-abs(a)``; ``abs(a * a)``, ``abs(abs(a))``: the operand; ``sqrt(a * a)``: ``abs(a)``
      (finite where ``a * a`` overflows).
    """
    ops, moved = [], {}

    def at(operand):
        return moved[operand[1]] if operand[0] == "tmp" else operand

    seen = {}

    def emit(name, operands, dtype, params=()):
        op = (name, params, tuple(operands), dtype)
        if op not in seen:
            ops.append(op)
            seen[op] = len(ops) - 1
        return ("tmp", seen[op])

    def producer(operand, name):
        if operand[0] == "tmp" and ops[operand[1]][0] == name:
            return ops[operand[1]][2]
        return None

    def from_bool(operand):
        if operand[0] != "tmp":
            return None
        op_name, op_params, op_operands, _ = ops[operand[1]]
        if (op_name != "convert_element_type"
                or _operand_dtype(program, ops, op_operands[0]) != "bool"):
            return None
        return op_operands[0]

    def squared(operand):
        """``a`` where ``operand`` is ``a * a``."""
        if operand[0] != "tmp":
            return None
        op_name, op_params, op_operands, _ = ops[operand[1]]
        if op_name == "square" or (op_name == "integer_pow" and dict(op_params)["y"] == 2):
            return op_operands[0]
        if op_name == "mul" and op_operands[0] == op_operands[1]:
            return op_operands[0]
        return None

    def reciprocal(divisor, dtype):
        """``1 / divisor``: folded into a literal as XLA folds it, where that is a normal
        number, so that LLVM sees a product by a constant (which it may contract)."""
        if divisor[0] == "lit":
            kind = np.dtype(dtype).type
            with np.errstate(all="ignore"):
                value = kind(1) / kind(float.fromhex(divisor[1]))
            if np.isfinite(value) and abs(value) >= np.finfo(kind).tiny:
                return ("lit", float(value).hex(), dtype)
        return emit("div", [("lit", (1.0).hex(), dtype), divisor], dtype)

    def simplified(name, params, operands, dtype):
        if not dtype.startswith("float"):
            return None
        if name == "add":
            for k in (0, 1):
                if _literal_equals(operands[k], 0.0):
                    return operands[1 - k]
        if name == "sub" and _literal_equals(operands[1], 0.0):
            return operands[0]
        if name == "mul":
            for k in (0, 1):
                if _literal_equals(operands[k], 1.0):
                    return operands[1 - k]
        if name in ("max", "min"):
            a, b = operands
            if a == b:
                return a
            for x, y in ((a, b), (b, a)):
                if producer(y, "neg") == (x,):
                    magnitude = emit("abs", [x], dtype)
                    return magnitude if name == "max" else emit("neg", [magnitude], dtype)
        if name == "abs" and (squared(operands[0]) is not None
                              or producer(operands[0], "abs") is not None):
            return operands[0]
        if name == "sqrt":
            root = squared(operands[0])
            if root is not None:
                return emit("abs", [root], dtype)
        return None

    for index, (name, params, operands, dtype) in enumerate(program.ops):
        operands = tuple(at(o) for o in operands)
        same = simplified(name, params, operands, dtype)
        if same is not None:
            moved[index] = same
            continue
        if name == "mul" and dtype.startswith("float"):
            for k in (0, 1):
                predicate = from_bool(operands[k])
                if predicate is not None:
                    zero = ("lit", (0.0).hex(), dtype)
                    moved[index] = emit("select_n", [predicate, zero, operands[1 - k]], dtype)
                    break
            else:
                moved[index] = emit(name, operands, dtype, params)
            continue
        if name == "div" and dtype.startswith("float"):
            numerator, divisor = operands
            inner_num, inner_div = producer(numerator, "div"), producer(divisor, "div")
            solitary = divisor[0] == "scalar" and divisor[1] in program.solitary
            if (divisor[0] == "lit" or solitary) and numerator[0] not in ("scalar", "lit"):
                moved[index] = emit("mul", [numerator, reciprocal(divisor, dtype)], dtype)
                continue
            if inner_num is not None and inner_div is not None:
                top = emit("mul", [inner_num[0], inner_div[1]], dtype)
                bottom = emit("mul", [inner_num[1], inner_div[0]], dtype)
                moved[index] = emit("div", [top, bottom], dtype)
                continue
            if inner_num is not None:
                product = emit("mul", [inner_num[1], divisor], dtype)
                moved[index] = emit("div", [inner_num[0], product], dtype)
                continue
            if inner_div is not None:
                product = emit("mul", [numerator, inner_div[1]], dtype)
                moved[index] = emit("div", [product, inner_div[0]], dtype)
                continue
        moved[index] = emit(name, operands, dtype, params)
    results = tuple(at(r) for r in program.results)
    results = tuple(r if r[0] == "tmp" else emit("copy", [r], dtype)
                    for r, dtype in zip(results, program.result_dtypes))
    return Program(program.inputs, program.scalars, tuple(ops), results,
                   program.result_dtypes, program.solitary)


def source(program: Program) -> str:
    """The C++ source of ``program``'s FFI handler, exported as ``gradchain_kernel``."""
    program = _as_xla_simplifies(program)
    n_in, n_out, n_scalar = len(program.inputs), len(program.result_dtypes), len(program.scalars)
    body = []
    for k, dtype in enumerate(program.inputs):
        body.append(f"const {_C_TYPES[dtype]} x{k} = in{k}[i];")
    for root, members, uses in _fusions(program):
        member_set = set(members)

        def spell(operand):
            kind = operand[0]
            if kind == "neg":
                return f"(-{spell(operand[1])})"
            if kind == "in":
                return f"x{operand[1]}"
            if kind == "scalar":
                return f"s{operand[1]}"
            if kind == "tmp":
                return f"f{root}_{operand[1]}" if operand[1] in member_set else f"v{operand[1]}"
            return _literal(operand[1], operand[2])

        for index in members:
            name, params, operands, dtype = program.ops[index]
            temp = f"f{root}_{index}"
            product = _contracted(program, member_set, uses, name, operands, dtype)
            bound = _bound_by_literal(name, operands, dtype)
            if bound is not None and bound[1] is None:
                expr = spell(bound[0])
            elif bound is not None:
                value, literal = (spell(o) for o in bound)
                sense = ">" if name == "max" else "<"
                expr = f"(({literal} {sense} {value}) ? {literal} : {value})"
            elif product is None:
                expr = _expression(name, params, [spell(o) for o in operands], dtype, body, temp)
                if _selects_a_bound(program, member_set, name, operands, dtype):
                    expr = f"gc_selected_bound<{_C_TYPES[dtype]}>({expr})"
            else:
                factor_a, factor_b, addend, negate = product
                x, y = spell(factor_a), spell(factor_b)
                expr = f"std::fma({'-' if negate else ''}{x}, {y}, {spell(addend)})"
            body.append(f"const {_C_TYPES[dtype]} {temp} = {expr};")
        body.append(f"const {_C_TYPES[program.ops[root][3]]} v{root} = f{root}_{root};")
    for k, (_, index) in enumerate(program.results):
        body.append(f"out{k}[i] = v{index};")

    pointers = [f"  const {_C_TYPES[d]}* in{k} = static_cast<const {_C_TYPES[d]}*>(p[{k}]);"
                for k, d in enumerate(program.inputs)]
    pointers += [f"  {_C_TYPES[d]}* out{k} = static_cast<{_C_TYPES[d]}*>(p[{n_in + k}]);"
                 for k, d in enumerate(program.result_dtypes)]
    scalar_fields = "".join(f" {_C_TYPES[d]} s{k};" for k, d in enumerate(program.scalars))
    scalar_locals = [f"  const {_C_TYPES[d]} s{k} = sc.s{k};"
                     for k, d in enumerate(program.scalars)]
    scalar_reads = []
    for k, d in enumerate(program.scalars):
        scalar_reads.append(
            f"  {{ auto a = args.get<ffi::AnyBuffer>(layout[{3 + 2 * k}]);"
            f" if (!a.has_value()) return a.error();"
            f" sc.s{k} = static_cast<const {_C_TYPES[d]}*>(a->untyped_data())"
            f"[layout[{4 + 2 * k}]]; }}")
    loop = "\n".join("    " + line for line in body)
    return _PRELUDE + f"""
struct Scalars {{ int unused;{scalar_fields} }};

static void run(void* const* p, const Scalars& sc, int64_t lo, int64_t hi) {{
{chr(10).join(pointers)}
{chr(10).join(scalar_locals)}
#pragma GCC ivdep
  for (int64_t i = lo; i < hi; ++i) {{
{loop}
  }}
}}

struct Work {{
  std::vector<void*> ptrs;
  std::vector<int64_t> leaf, lo, hi;
  Scalars sc;
  size_t width = 0;
  std::atomic<int64_t> next{{0}}, done{{0}};
  void drain() {{
    FlushSubnormals flush;
    const int64_t chunks = static_cast<int64_t>(leaf.size());
    for (int64_t c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) {{
      run(&ptrs[leaf[c] * width], sc, lo[c], hi[c]);
      done.fetch_add(1, std::memory_order_release);
    }}
  }}
}};

// ``layout``: [packs, scalars, copies, then (pack, index) of each scalar of the program, then
// (pack, index) of each copied result]. The operands are the packs (each an array of the
// step's scalars of one dtype), each leaf's arrays in turn, then buffers the copied results
// may overwrite; the results are each leaf's results in turn, then the copied scalars.
static ffi::Error Impl(ffi::ThreadPool pool, ffi::Span<const int64_t> layout,
                       ffi::RemainingArgs args, ffi::RemainingRets rets) {{
  const size_t n_scalar = {n_scalar}, n_in = {n_in}, n_out = {n_out};
  const auto wrong = [] {{
    return ffi::Error::InvalidArgument("gradchain kernel: wrong number of buffers");
  }};
  if (layout.size() < 3 || layout[1] != static_cast<int64_t>(n_scalar)) return wrong();
  const size_t packs = layout[0], copies = layout[2];
  if (layout.size() != 3 + 2 * (n_scalar + copies) || rets.size() < copies ||
      (rets.size() - copies) % n_out != 0)
    return wrong();
  const size_t leaves = (rets.size() - copies) / n_out;
  if (args.size() < packs + leaves * n_in) return wrong();
  for (size_t j = 0; j < copies; ++j) {{
    const int64_t* at = &layout[3 + 2 * (n_scalar + j)];
    auto from = args.get<ffi::AnyBuffer>(at[0]);
    if (!from.has_value()) return from.error();
    auto to = rets.get<ffi::AnyBuffer>(leaves * n_out + j);
    if (!to.has_value()) return to.error();
    const size_t bytes = (*to)->size_bytes();
    std::memcpy((*to)->untyped_data(),
                static_cast<const char*>(from->untyped_data()) + at[1] * bytes, bytes);
  }}
  auto work = std::make_shared<Work>();
  Scalars& sc = work->sc;
{chr(10).join(scalar_reads)}
  const size_t width = n_in + n_out;
  work->width = width;
  work->ptrs.resize(leaves * width);
  int64_t total = 0;
  for (size_t l = 0; l < leaves; ++l) {{
    for (size_t k = 0; k < n_in; ++k) {{
      auto a = args.get<ffi::AnyBuffer>(packs + l * n_in + k);
      if (!a.has_value()) return a.error();
      work->ptrs[l * width + k] = a->untyped_data();
    }}
    int64_t n = 0;
    for (size_t k = 0; k < n_out; ++k) {{
      auto r = rets.get<ffi::AnyBuffer>(l * n_out + k);
      if (!r.has_value()) return r.error();
      work->ptrs[l * width + n_in + k] = (*r)->untyped_data();
      n = static_cast<int64_t>((*r)->element_count());
    }}
    total += n;
    for (int64_t lo = 0; lo < n; lo += {_CHUNK}) {{
      work->leaf.push_back(static_cast<int64_t>(l));
      work->lo.push_back(lo);
      work->hi.push_back(lo + {_CHUNK} < n ? lo + {_CHUNK} : n);
    }}
  }}
  const int64_t chunks = static_cast<int64_t>(work->leaf.size());
  // Helpers from XLA's own intra-op pool take chunks as they come; this thread takes them
  // too, so the work finishes even if no helper starts. A helper starting after the last
  // chunk finds none (it holds the work by shared_ptr, so nothing it touches is freed).
  const int64_t helpers =
      total < {_PARALLEL_MIN} ? 0 : std::min<int64_t>(pool.num_threads(), chunks) - 1;
  for (int64_t h = 0; h < helpers; ++h) pool.Schedule([work]() {{ work->drain(); }});
  work->drain();
  while (work->done.load(std::memory_order_acquire) < chunks) std::this_thread::yield();
  return ffi::Error::Success();
}}

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    gradchain_kernel, Impl,
    ffi::Ffi::Bind()
        .Ctx<ffi::ThreadPool>()
        .Attr<ffi::Span<const int64_t>>("layout")
        .RemainingArgs()
        .RemainingRets());
"""


def compiler() -> str | None:
    """The C++ compiler to use: ``$CXX``, else ``g++`` or ``c++`` on the PATH, else None."""
    for candidate in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def unavailable() -> str | None:
    """Why no kernel can run here (another default backend, no C++ compiler), or None."""
    if jax.default_backend() != "cpu":
        return f"the default backend is {jax.default_backend()}, not cpu"
    if compiler() is None:
        return "no C++ compiler found ($CXX, g++, c++ or clang++)"
    return None


def _cache_dir() -> Path:
    default = Path.home() / ".cache" / "gradchain" / "kernels"
    return Path(os.environ.get("GRADCHAIN_KERNEL_CACHE", default))


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next((line for line in info if line.startswith("flags")), "")
    except OSError:
        return ""


def _compile_flags() -> list:
    return ["-O3", "-march=native", "-std=c++17", "-fPIC", "-fno-math-errno",
            "-ffp-contract=off", "-w", "-I", jax.ffi.include_dir()]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join([*parts, _cpu_flags()]).encode()).hexdigest()[:32]


def _atomic_write(built: Path, target: Path) -> None:
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    shutil.copyfile(built, partial)
    os.replace(partial, target)


def _precompiled_headers(cxx: str) -> list:
    """``-include`` flags that give the compiler the kernels' headers precompiled (built once
    per machine beside the kernels: the FFI headers are most of a kernel's compile time), or
    ``[]`` if that build fails (each kernel then reads them itself)."""
    flags = _compile_flags()
    header = _cache_dir() / f"headers-{_digest(_HEADERS, cxx, *flags)}.h"
    compiled = header.with_name(header.name + ".gch")
    if not compiled.exists():
        header.parent.mkdir(parents=True, exist_ok=True)
        if not header.exists():
            with tempfile.TemporaryDirectory() as tmp:
                written = Path(tmp) / "headers.h"
                written.write_text(_HEADERS)
                _atomic_write(written, header)
        with tempfile.TemporaryDirectory() as tmp:
            built = Path(tmp) / "headers.h.gch"
            done = subprocess.run([cxx, *flags, "-x", "c++-header", str(header), "-o",
                                   str(built)], capture_output=True)
            if done.returncode != 0:
                return []
            _atomic_write(built, compiled)
    return ["-include", str(header)]


def _build(code: str, cxx: str) -> Path | None:
    flags = _compile_flags()
    target = _cache_dir() / f"{_digest(code, cxx, *flags)}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    headers = _precompiled_headers(cxx)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "kernel.cc"
        src.write_text(code)
        built = Path(tmp) / "kernel.so"
        done = subprocess.run([cxx, *flags, *headers, "-shared", str(src), "-o", str(built)],
                              capture_output=True)
        if done.returncode != 0:
            return None
        _atomic_write(built, target)
    return target


def kernel_target(program: Program) -> str | None:
    """The registered XLA:CPU custom-call target running ``program``, or None (no compiler,
    or the compile failed)."""
    if program in _TARGETS:
        return _TARGETS[program]
    cxx = compiler()
    path = _build(source(program), cxx) if cxx else None
    name = None
    if path is not None:
        library = ctypes.CDLL(str(path), mode=ctypes.RTLD_LOCAL)
        _LIBRARIES.append(library)
        name = f"gradchain_{path.stem}"
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(library.gradchain_kernel),
                                    platform="cpu")
    _TARGETS[program] = name
    return name
