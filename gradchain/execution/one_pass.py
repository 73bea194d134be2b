"""One pass over memory: every leaf's per-element work as one compiled loop.

XLA:CPU compiles an optimizer's update leaf by leaf and, for Adam, as three loops per leaf
(m', v', then the step re-reading both), so a step moves 40 bytes per float32 parameter where
28 suffice, and its compile time grows with the number of leaves. ``one_pass`` traces the
update, keeps its scalar work (step counts, bias corrections, schedules) in XLA, and runs the
per-element work of the leaves that share a program as one C++ loop (``cpu_kernels.py``):
each input element read once, each result written once, one custom call per
``LEAVES_PER_CALL`` leaves. It is generic: the program is read from the traced chain
(``programs.py``), so any chain of per-element primitives, the kit's ``gc.elementwise`` ones
included, runs this way.

Where it cannot, the transformation runs as it is, with XLA's numbers:

- the default backend is not the CPU (XLA:GPU already fuses a leaf's outputs into one kernel);
- no C++ compiler is found, or the compile fails;
- the update has work that is not per-element (a norm, a matrix product, a random draw,
  transcendental functions, a division by a square root, bfloat16 or float16 arithmetic);
- under ``jax.vmap``, ``jax.jvp`` or ``jax.grad``, which run XLA's code (a custom rule).

``gc.one_pass_available(tx, params)`` says which applies. The kernel rounds where XLA:CPU's
code rounds (``cpu_kernels.py``): its results equal XLA's to the bit for the optimizers of the
test registry on trees of several leaves, except where LLVM contracts another product into a
fused multiply-add than the kernel does (AdaBelief with Nesterov: at most 4 ulps per step;
``tests/test_one_pass.py``). On random compositions of its primitives
(``benchmarks/one_pass_agreement.py``) about nine programs in ten are bit-identical; in the
others a product is contracted in one and not the other, a rounding apart, which cancellation
can make large (``BUILD.md``).
"""

from __future__ import annotations

import collections
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from gradchain.core.public import public
from gradchain.core.transformation import GradientTransformation
from gradchain.execution import cpu_kernels, programs

# Leaves per custom call: XLA's compile time grows faster than linearly with the operands of one
# instruction (measured: one call for all leaves of a 1,000-leaf Adam compiles in 97 s), so
# the leaves sharing a program are split into calls of at most this many.
LEAVES_PER_CALL = 32


def _value(ref, env):
    if isinstance(ref, programs.Literal):
        return np.asarray(ref.value, dtype=ref.dtype)
    return env[ref]


def _plan(function: Callable, flat_args: list):
    """(((split, targets), closed_jaxpr), out_tree, why): the traced split of
    ``function(*flat_args)`` and its kernels' targets, or ``(None, out_tree or None, reason)``."""
    out_tree = []

    def flat_function(*args):
        out, tree = jax.tree.flatten(function(*args))
        out_tree.append(tree)
        return out

    # Decided before tracing: the caller traces the update again when it cannot run here.
    why = cpu_kernels.unavailable()
    if why is not None:
        return None, None, why
    closed = jax.make_jaxpr(flat_function)(*flat_args)
    split, unsupported = programs.split(closed)
    if split is None:
        return None, out_tree[0], f"the update has work that is not per-element ({unsupported})"
    if not split.pieces:
        return None, out_tree[0], "the update has no per-element work"
    targets = {}
    for piece in split.pieces:
        if piece.program not in targets:
            targets[piece.program] = cpu_kernels.kernel_target(piece.program)
            if targets[piece.program] is None:
                return None, out_tree[0], "the C++ compile of the kernel failed"
    return ((split, targets), closed), out_tree[0], None


def _execute(split, targets, flat_args: Sequence, aliases: dict, inputs: int) -> list:
    """Run ``split`` on ``flat_args`` (the function's ``inputs`` flat inputs, then the traced
    jaxpr's consts): its scalar equations in XLA, then custom calls of at most
    ``LEAVES_PER_CALL`` leaves per program and scalar set. ``aliases``: {flat input index:
    flat output index} that may share memory.

    The scalars the calls read and the scalar results the function returns (new counts,
    hyperparameters, records) are stacked into one array per dtype, which XLA computes in one
    fusion; the calls read their scalars from these packs, and the first call also copies the
    scalar results out of them. Written by XLA, each scalar result is one more task for
    XLA:CPU's executor, which runs a step of more than eight tasks on its thread pool instead
    of in order on the calling thread (measured: a one-leaf Adam step of 1,000 elements took
    151-203 us with its 23 tasks, 34-60 us with the hyperparameter records left out)."""
    env = dict(zip(split.input_vars, list(flat_args) + list(split.const_values)))
    for eqn in split.scalar_eqns:
        outs = eqn.primitive.bind(*[_value(r, env) for r in eqn.inputs], **eqn.params)
        env.update(zip(eqn.outputs, outs if eqn.primitive.multiple_results else [outs]))
    out_index = {ref: k for k, ref in enumerate(split.outputs)
                 if not isinstance(ref, programs.Literal)}
    wanted = {aliases[k]: k for k in aliases}
    groups: dict = {}
    for piece in split.pieces:
        groups.setdefault((piece.program, tuple(piece.scalar_vars)), []).append(piece)
    calls = [(program, scalar_vars, pieces[start:start + LEAVES_PER_CALL])
             for (program, scalar_vars), pieces in groups.items()
             for start in range(0, len(pieces), LEAVES_PER_CALL)]

    packs: dict = {}   # dtype name -> {variable, or a Literal's bytes: (index, ref)}

    def packed(ref):
        literal = isinstance(ref, programs.Literal)
        dtype = programs.dtype_name(ref.dtype if literal else split.avals[ref].dtype)
        key = np.asarray(ref.value, dtype).tobytes() if literal else ref
        members = packs.setdefault(dtype, {})
        return dtype, members.setdefault(key, (len(members), ref))[0]

    passed_through = set(split.input_vars[:inputs])
    copied = [(k, packed(ref)) for k, ref in enumerate(split.outputs)
              if _is_scalar(ref, split) and (isinstance(ref, programs.Literal)
                                             or ref not in passed_through)]
    scalar_at = {ref: packed(ref) for _, scalar_vars, _ in calls for ref in scalar_vars}
    position = {dtype: k for k, dtype in enumerate(packs)}
    arrays = [_pack([_value(ref, env) for _, ref in members.values()], dtype)
              for dtype, members in packs.items()]

    results_of = {}
    for number, (program, scalar_vars, pieces) in enumerate(calls):
        operands = list(arrays)
        layout = [len(arrays), len(scalar_vars), len(copied) if number == 0 else 0]
        for ref in scalar_vars:
            dtype, index = scalar_at[ref]
            layout += [position[dtype], index]
        results, shapes, io_aliases = [], [], {}
        for piece in pieces:
            for ref in piece.result_vars:
                source = wanted.get(out_index.get(ref))
                if source is not None and split.input_vars[source] in piece.input_vars:
                    operand = len(operands) + piece.input_vars.index(split.input_vars[source])
                    if operand not in io_aliases:
                        io_aliases[operand] = len(results)
                aval = split.avals[ref]
                shapes.append(jax.ShapeDtypeStruct(aval.shape, aval.dtype))
                results.append(ref)
            operands.extend(env[v] for v in piece.input_vars)
        if number == 0:
            for k, (dtype, index) in copied:
                layout += [position[dtype], index]
                if k in wanted:
                    io_aliases[len(operands)] = len(shapes)
                    operands.append(flat_args[wanted[k]])
                shapes.append(jax.ShapeDtypeStruct((), dtype))
        call = jax.ffi.ffi_call(targets[program], shapes, input_output_aliases=io_aliases)
        outs = call(*operands, layout=np.asarray(layout, np.int64))
        env.update(zip(results, outs))
        if number == 0:
            results_of = {k: out for (k, _), out in zip(copied, outs[len(results):])}
    return [results_of[k] if k in results_of else jnp.asarray(_value(r, env))
            for k, r in enumerate(split.outputs)]


def _pack(values: list, dtype: str):
    """``values`` (scalars) as one array, built by selects (one loop XLA:CPU fuses with the
    values' own computations, where a ``concatenate`` of them is a task of its own after
    theirs); the bits of each value are kept."""
    index = jax.lax.iota(np.int32, len(values))
    packed = jnp.zeros(len(values), dtype)
    for k, value in enumerate(values):
        packed = jnp.where(index == k, jnp.asarray(value, dtype), packed)
    return packed


def _is_scalar(ref, split) -> bool:
    """A scalar of a dtype the packs hold (a Literal, or a variable of shape ())."""
    if isinstance(ref, programs.Literal):
        shape, dtype = np.shape(ref.value), ref.dtype
    else:
        shape, dtype = split.avals[ref].shape, split.avals[ref].dtype
    return shape == () and programs.dtype_name(dtype) in programs.KERNEL_DTYPES


def _run(function: Callable, flat_args: list, in_tree, alias_pairs: Callable):
    """``function`` on ``flat_args`` (flattened with ``in_tree``) through the kernels, or
    ``(None, reason)`` when it cannot run that way."""

    def unflat(*args):
        return function(*jax.tree.unflatten(in_tree, args))

    planned, out_tree, why = _plan(unflat, flat_args)
    if planned is None:
        return None, why
    (split, targets), closed = planned
    out_avals = [(np.shape(r.value), r.dtype) if isinstance(r, programs.Literal)
                 else (split.avals[r].shape, programs.dtype_name(split.avals[r].dtype))
                 for r in split.outputs]
    aliases = alias_pairs(out_tree, out_avals)
    count = len(flat_args)

    # The traced constants (a learning rate the caller differentiates, say) are explicit
    # inputs, so that jvp and vmap see them.
    def fused(*args):
        return _execute(split, targets, args, aliases, count)

    def flat_xla(*args):
        return jax.core.eval_jaxpr(closed.jaxpr, args[count:], *args[:count])

    fused = custom_vmap(fused)

    @fused.def_vmap
    def _batched(axis_size, in_batched, *args):
        axes = [0 if batched else None for batched in in_batched]
        out = jax.vmap(flat_xla, in_axes=axes, axis_size=axis_size)(*args)
        return out, [True] * len(out)

    differentiable = jax.custom_jvp(fused)
    differentiable.defjvp(lambda primals, tangents: jax.jvp(flat_xla, primals, tangents))
    out = differentiable(*flat_args, *closed.consts)
    return jax.tree.unflatten(out_tree, out), None


def _same_position_pairs(first: int, count: int, out_first: int, state_tree, out_tree):
    """Flat input ``first + k`` may share memory with flat output ``out_first + k``, when the
    state leaves come back in the same structure."""
    outs = out_tree.children() if out_tree.num_leaves else []
    if len(outs) != 2 or outs[1] != state_tree:
        return {}
    return {first + k: out_first + k for k in range(count)}


@public
def one_pass(tx: GradientTransformation, *, require: bool = False) -> GradientTransformation:
    """``tx`` with its per-element work run as one compiled loop over all leaves on the CPU.

    The same ``init``, state, hyperparameters and numbers (to the bit) as ``tx``; ``update``
    reads each element of the gradient, params and state once and writes each result once,
    in one XLA custom call per distinct per-leaf program (one for all leaves of an Adam),
    instead of XLA:CPU's loops per leaf and per output (see ``gradchain/execution``). Donate
    the state to ``jit`` (``donate_argnums``) so the new moments overwrite the old ones in
    place. Where the update cannot run this way (another backend, no C++ compiler, work that
    is not per-element, under ``vmap``/``jvp``/``grad``) it runs as ``tx`` does;
    ``one_pass_available`` says why.

    Args:
      tx: the transformation to run.
      require: raise ``ValueError`` (naming the reason) at trace time instead of running
        ``tx`` as it is when the one-pass loop cannot be used.

    Returns:
      A ``GradientTransformation`` with ``tx``'s ``init`` and state.

    Example:
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> tx = gc.one_pass(gc.adam(learning_rate=0.1))
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> gc.apply_updates(params, updates)["w"].tolist()
      [0.9, -1.9]
    """
    if not isinstance(tx, GradientTransformation) and not (
            isinstance(tx, tuple) and len(tx) == 2 and all(map(callable, tx))):
        raise TypeError(f"one_pass: tx must be a GradientTransformation, got {type(tx).__name__}")
    init, inner_update = tx

    def update(updates, state, params=None, **extra):
        args = (updates, state, params, extra)
        flat, in_tree = jax.tree.flatten(args)
        n_updates = len(jax.tree.leaves(updates))
        state_tree = jax.tree.structure(state)

        def pairs(out_tree, out_avals):
            return _same_position_pairs(n_updates, state_tree.num_leaves,
                                        out_tree.num_leaves - state_tree.num_leaves,
                                        state_tree, out_tree)

        out, why = _run(lambda u, s, p, e: inner_update(u, s, p, **e), flat, in_tree, pairs)
        if out is None:
            if require:
                raise ValueError(f"one_pass: cannot run the update as one pass: {why}")
            return inner_update(updates, state, params, **extra)
        return out

    parts = tx.parts if isinstance(tx, GradientTransformation) else ()
    return GradientTransformation(init, update, name="one_pass", children=(tx,), parts=parts)


def one_pass_function(function: Callable, *, donate_argnums: Sequence[int] = (),
                      require: bool = False) -> Callable:
    """``function`` with its per-element work run as one compiled loop (see ``one_pass``).

    For a whole training step whose arrays are touched only element by element, e.g.
    ``(params, state, grads) -> (apply_updates(params, updates), state)``: the new params are
    then written by the same loop that reads the gradient and the moments, 28 bytes per
    float32 parameter for Adam. ``donate_argnums`` names the arguments the caller donates to
    ``jit``; their leaves may share memory with results of the same shape and dtype, paired
    in order as ``jit`` pairs donated buffers. Returns the same values as ``function`` (to the
    bit); where the one-pass loop cannot be used, it calls ``function``. ``function`` calls the
    plain transformation: a ``one_pass(tx)`` inside it is an opaque call to this reading
    (``require=True`` names it: ``custom_vmap_call``), so the step then runs as written, the
    inner loop for the update and XLA's code for the rest.

    Args:
      function: a function of pytrees of arrays, traceable by ``jax.make_jaxpr``.
      donate_argnums: positions of the arguments donated to ``jit`` (default none).
      require: raise ``ValueError`` instead of calling ``function`` as it is when the
        one-pass loop cannot be used.

    Returns:
      A function of the same arguments returning the same pytree.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import gradchain as gc
      >>> tx = gc.adam(learning_rate=0.1)
      >>> def step(params, state, grads):
      ...     updates, state = tx.update(grads, state, params)
      ...     return gc.apply_updates(params, updates), state
      >>> step = jax.jit(gc.one_pass_function(step, donate_argnums=(0, 1)),
      ...                donate_argnums=(0, 1))
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> params, state = step(params, tx.init(params), {"w": jnp.array([0.5, -0.5])})
      >>> params["w"].tolist()
      [0.9, -1.9]
    """
    donated = tuple(sorted({int(k) for k in donate_argnums}))

    def wrapped(*args):
        flat, in_tree = jax.tree.flatten(args)
        offsets = np.cumsum([0] + [len(jax.tree.leaves(a)) for a in args])
        donated_flat = [i for k in donated if k < len(args)
                        for i in range(offsets[k], offsets[k + 1])]

        def pairs(out_tree, out_avals):
            free = {}
            for j, aval in enumerate(out_avals):
                free.setdefault(aval, collections.deque()).append(j)
            result = {}
            for i in donated_flat:
                waiting = free.get((np.shape(flat[i]), programs.dtype_name(flat[i].dtype)))
                if waiting:
                    result[i] = waiting.popleft()
            return result

        out, why = _run(function, flat, in_tree, pairs)
        if out is None:
            if require:
                raise ValueError(f"one_pass_function: cannot run as one pass: {why}")
            return function(*args)
        return out

    return wrapped


def one_pass_available(tx: GradientTransformation, params) -> str | None:
    """Why ``one_pass(tx)`` would run ``tx`` as it is for ``params``, or None when its
    per-element work runs as one pass.

    Args:
      tx: the transformation.
      params: a pytree of arrays (or ``jax.ShapeDtypeStruct``) shaped as the params.

    Returns:
      None, or the reason as a sentence.
    """
    state = jax.eval_shape(tx.init, params)
    flat, in_tree = jax.tree.flatten((params, state, params))

    def unflat(*args):
        return tx.update(*jax.tree.unflatten(in_tree, args))

    structs = [jax.ShapeDtypeStruct(np.shape(x), x.dtype) for x in flat]
    return _plan(unflat, structs)[2]
