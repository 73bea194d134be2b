"""A per-leaf rule is traced a bounded number of times per kind of leaf, whatever the number of
leaves, and the replays make the same program as calling it leaf by leaf: the same jaxpr, the
same numbers to the bit, under jit, vmap and grad."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc
from gradchain.combinators import branch
from gradchain.core import elementwise
from gradchain.core.leafwise import map_leaves
from gradchain.kit import rules


def tree(seed, shapes):
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return {f"l{i:02d}": jax.random.normal(k, s, jnp.float32) for i, (k, s) in
            enumerate(zip(keys, shapes))}


# Leaves of two repeated shapes and one met once.
SHAPES = [(3, 4)] * 5 + [(7,)] * 2 + [(2, 2)]


@pytest.mark.parametrize("copies", [1, 6])
def test_traces_per_kind_of_leaf_do_not_grow_with_the_leaves(copies):
    calls = []

    def rule(x, y):
        calls.append(jnp.shape(x))
        return x * y + 1.0, None

    shapes = SHAPES * copies
    xs, ys = list(tree(0, shapes).values()), list(tree(1, shapes).values())
    out = jax.jit(lambda xs, ys: map_leaves(rule, xs, ys))(xs, ys)
    # Each repeated kind is called once and recorded once; the others are replayed.
    assert sorted(calls) == [(2, 2)] * (1 if copies == 1 else 2) + [(3, 4)] * 2 + [(7,)] * 2
    for (o, none), x, y in zip(out, xs, ys):
        assert none is None
        np.testing.assert_array_equal(o, x * y + 1.0)


def test_dtypes_and_weak_types_are_kinds_of_their_own():
    seen = []

    def rule(x):
        seen.append((x.dtype, x.weak_type))
        return x + 1

    strong = [jnp.float32(1.0), jnp.float32(2.0), jnp.float64(3.0), jnp.float64(4.0)]
    out = jax.jit(lambda xs, w: map_leaves(rule, xs + [w, w]))(
        strong, 2.0)
    assert [o.dtype for o in out] == ["float32"] * 2 + ["float64"] * 4
    assert [o.weak_type for o in out] == [False] * 4 + [True] * 2
    assert sorted(set(seen), key=str) == sorted({("float32", False), ("float64", False),
                                                  ("float64", True)}, key=str)


def leaf_by_leaf(rule, *columns):
    return [rule(*row) for row in zip(*columns)]


KIT_SIGN = gc.elementwise(lambda g, stat, b: (jnp.sign(stat), b * stat + (1 - b) * g),
                          name="kit_sign", statistic=0.0, hyperparams={"b": 0.9})
KIT_MATRIX = gc.per_leaf(lambda g, b: g @ g.T @ g * b if g.ndim == 2 else g * b,
                         name="kit_matrix", hyperparams={"b": 0.5})
OPTIMIZERS = {
    "adam": gc.adam(1e-2),
    "adamw": gc.adamw(1e-2, weight_decay=0.1),
    "kit": gc.chain(KIT_SIGN, KIT_MATRIX, gc.scale_by_learning_rate(0.1)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_update_is_the_program_of_calling_the_rule_leaf_by_leaf(name, monkeypatch):
    tx = OPTIMIZERS[name]
    grads, params = tree(2, SHAPES), tree(3, SHAPES)

    def steps(g, p):
        state = tx.init(p)
        for k in range(3):
            u, state = tx.update(jax.tree.map(lambda x: x * (k + 1), g), state, p)
        return u, state

    replayed_jaxpr = str(jax.make_jaxpr(steps)(grads, params))
    replayed = jax.jit(steps)(grads, params)
    for module in (elementwise, branch, rules):
        monkeypatch.setattr(module, "map_leaves", leaf_by_leaf)
    assert replayed_jaxpr == str(jax.make_jaxpr(steps)(grads, params))
    chex.assert_trees_all_equal(replayed, jax.jit(steps)(grads, params))


def test_replays_under_vmap_and_grad():
    grads, params = tree(4, SHAPES), tree(5, SHAPES)
    batch = jax.tree.map(lambda g: jnp.stack([g, -2 * g]), grads)

    def first_updates(g, learning_rate):
        tx = gc.adam(learning_rate)
        p = {k: params[k] for k in g}
        return tx.update(g, tx.init(p), p)[0]

    vmapped = jax.jit(jax.vmap(first_updates, in_axes=(0, None)))(batch, 0.1)
    for row in range(2):
        single = jax.tree.map(lambda b: b[row], batch)
        chex.assert_trees_all_close(jax.tree.map(lambda v: v[row], vmapped),
                                    jax.jit(first_updates)(single, 0.1), rtol=1e-6)

    def total(learning_rate, g):
        return sum(jnp.sum(jnp.sin(u)) for u in jax.tree.leaves(first_updates(g, learning_rate)))

    grad = jax.jit(jax.grad(total))
    whole = grad(0.1, grads)
    by_leaf = sum(grad(0.1, {k: grads[k]}) for k in grads)
    np.testing.assert_allclose(whole, by_leaf, rtol=1e-5)
    assert abs(whole) > 0
