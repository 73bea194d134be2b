"""Masks and labels compose: a tree over the whole model works inside another mask, a group or a
freezer (leaves the enclosing wrapper does not own are simply not selected), every mask and
labels argument takes ``fn(params)`` and ``fn(path, leaf)``, a callable pytree is read as a tree,
empty params give an empty state, and ``optax.tree.map_params`` sees through the wrappers.
Numbers are Optax's wherever Optax accepts the same input."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st

import gradchain as gc
from gradchain.wrappers.labels import MaskedNode

STEPS = 3


def _params():
    rng = np.random.default_rng(0)
    shapes = {"body": {"w": (3, 2), "b": (2,)}, "head": {"w": (2, 2), "b": (2,)}}
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s)), shapes,
                        is_leaf=lambda s: isinstance(s, tuple))


PARAMS = _params()
GRADS = jax.tree.map(lambda p: jnp.asarray(
    np.random.default_rng(1).normal(size=(STEPS,) + p.shape)), PARAMS)
GRADS_0 = jax.tree.map(lambda g: g[0], GRADS)
# Trees over the whole model (every leaf has an entry).
OUTER = {"body": {"w": True, "b": False}, "head": {"w": True, "b": True}}
INNER = {"body": {"w": True, "b": True}, "head": {"w": False, "b": True}}
INNER_SUBTREE = {"body": {"w": True, "b": False}, "head": True}
LABELS = {"body": {"w": "train", "b": "frozen"}, "head": {"w": "train", "b": "train"}}
FROZEN = {"body": {"w": False, "b": True}, "head": {"w": False, "b": False}}
DECAY = {"body": {"w": True, "b": False}, "head": {"w": True, "b": False}}


def run(tx, params=PARAMS, grads=GRADS):
    """``STEPS`` steps, run eagerly (faster than compiling for these few small leaves); the
    params after each."""
    state, out = tx.init(params), []
    for i in range(STEPS):
        updates, state = tx.update(jax.tree.map(lambda g: g[i], grads), state, params)
        params = optax.apply_updates(params, updates)
        out.append(params)
    return out


def assert_same_run(ours, theirs):
    chex.assert_trees_all_close(run(ours), run(theirs), rtol=1e-12, atol=1e-14)


# --- tree masks inside masks, groups and freezers -------------------------------------------


def both(outer, inner):
    """The mask selecting the leaves both masks select, over the whole model."""
    full = lambda mask: jax.tree.map(  # noqa: E731
        lambda m, p: jax.tree.map(lambda _: m, p), mask, PARAMS)
    return jax.tree.map(lambda a, b: a and b, full(outer), full(inner))


@pytest.mark.parametrize("inner", [INNER, INNER_SUBTREE], ids=["leaf_entries", "subtree_entry"])
def test_masked_inside_masked_matches_optax(inner):
    ours = gc.masked(gc.masked(gc.sgd(0.1, momentum=0.9), inner), OUTER)
    theirs = optax.masked(optax.masked(optax.sgd(0.1, momentum=0.9), inner), OUTER)
    assert_same_run(ours, theirs)
    assert_same_run(ours, optax.masked(optax.sgd(0.1, momentum=0.9), both(OUTER, inner)))
    state = ours.init(PARAMS)
    chex.assert_trees_all_close(jax.jit(ours.update)(GRADS_0, state, PARAMS),
                                ours.update(GRADS_0, state, PARAMS))
    # the inner state holds momentum for the leaves both masks select, nothing elsewhere
    state = ours.init(PARAMS).inner_state.inner_state
    buffer = gc.find_state(state, "buffer")
    chex.assert_trees_all_equal(
        jax.tree.map(lambda x: isinstance(x, MaskedNode), buffer,
                     is_leaf=lambda x: isinstance(x, MaskedNode)),
        jax.tree.map(lambda m: not m, both(OUTER, inner)))


def test_masked_inside_optax_masked_and_the_reverse():
    """Optax's outer mask at a subtree level puts one placeholder where our inner tree has
    entries below it (Optax's own inner mask refuses that tree); ours puts one per leaf, which
    Optax's inner mask accepts."""
    prefix_outer = {"body": True, "head": False}
    reference = optax.masked(optax.sgd(0.1, momentum=0.9), both(prefix_outer, INNER))
    assert_same_run(optax.masked(gc.masked(gc.sgd(0.1, momentum=0.9), INNER), prefix_outer),
                    reference)
    assert_same_run(gc.masked(optax.masked(optax.sgd(0.1, momentum=0.9), INNER), prefix_outer),
                    reference)


def test_freeze_where_around_adamw_with_a_whole_model_mask_matches_optax():
    ours = gc.freeze_where(gc.adamw(0.1, weight_decay=0.5, mask=DECAY), FROZEN)
    theirs = optax.partition({"train": optax.adamw(0.1, weight_decay=0.5, mask=DECAY),
                              "frozen": optax.set_to_zero()}, LABELS)
    assert_same_run(ours, theirs)
    frozen_bias = run(ours)[-1]["body"]["b"]
    chex.assert_trees_all_equal(frozen_bias, PARAMS["body"]["b"])


@pytest.mark.parametrize("groups", [gc.param_groups, gc.partition])
def test_group_holding_a_mask_over_the_whole_model_matches_optax(groups):
    ours = groups({"train": gc.masked(gc.sgd(0.1, momentum=0.9), INNER),
                   "frozen": gc.set_to_zero()}, LABELS)
    theirs = optax.partition({"train": optax.masked(optax.sgd(0.1, momentum=0.9), INNER),
                              "frozen": optax.set_to_zero()}, LABELS)
    assert_same_run(ours, theirs)


def test_a_mask_over_the_groups_own_leaves_also_works():
    """The leaves a group does not own may be left out of its inner mask (Optax refuses it)."""
    own = {"body": {"w": True}, "head": {"w": False, "b": True}}
    ours = gc.param_groups({"train": gc.masked(gc.sgd(0.1, momentum=0.9), own),
                            "frozen": gc.set_to_zero()}, LABELS)
    theirs = optax.partition({"train": optax.masked(optax.sgd(0.1, momentum=0.9), INNER),
                              "frozen": optax.set_to_zero()}, LABELS)
    assert_same_run(ours, theirs)


def test_groups_inside_groups_with_labels_over_the_whole_model():
    inner_labels = {"body": {"w": "fast", "b": "slow"}, "head": {"w": "slow", "b": "fast"}}
    ours = gc.param_groups(
        {"train": gc.param_groups({"fast": gc.sgd(0.2), "slow": gc.sgd(0.01)}, inner_labels),
         "frozen": gc.set_to_zero()}, LABELS)
    theirs = optax.partition(
        {"train": optax.partition({"fast": optax.sgd(0.2), "slow": optax.sgd(0.01)},
                                  inner_labels),
         "frozen": optax.set_to_zero()}, LABELS)
    assert_same_run(ours, theirs)


MASKS = st.fixed_dictionaries({
    part: st.one_of(st.booleans(), st.fixed_dictionaries({"w": st.booleans(), "b": st.booleans()}))
    for part in ("body", "head")})


@settings(max_examples=25, deadline=None)
@given(outer=MASKS, inner=MASKS, frozen=MASKS)
def test_nested_masks_select_where_every_level_selects(outer, inner, frozen):
    """Invariant: ``freeze_where(masked(masked(scale(3), inner), outer), frozen)`` is 0 where
    frozen, 3·g where both masks select, g elsewhere, for any masks (leaf or subtree entries)."""
    tx = gc.freeze_where(gc.masked(gc.masked(gc.scale(3.0), inner), outer), frozen)
    updates, _ = tx.update(GRADS_0, tx.init(PARAMS), PARAMS)
    is_frozen = both(frozen, frozen)
    scaled = both(outer, inner)
    expected = jax.tree.map(lambda g, f, s: 0.0 * g if f else (3.0 * g if s else g),
                            GRADS_0, is_frozen, scaled)
    chex.assert_trees_all_close(updates, expected, rtol=1e-15)


def test_inner_mask_still_refuses_a_wrong_tree():
    """Leaves that are not owned are skipped, not anything at all: a key the model does not
    have, or a missing one, is still an error."""
    with pytest.raises(ValueError, match=r"masked: the mask tree does not match the params: its "
                                         r"entry at head/x matches no params leaf"):
        gc.masked(gc.masked(gc.sgd(0.1), {"body": True, "head": {"w": True, "b": True,
                                                                 "x": True}}), OUTER).init(PARAMS)
    with pytest.raises(ValueError, match=r"no entry 'head' at <root>"):
        gc.masked(gc.masked(gc.sgd(0.1), {"body": True}), OUTER).init(PARAMS)
    with pytest.raises(ValueError, match=r"its entry at body/x matches no params leaf"):
        gc.masked(gc.masked(gc.sgd(0.1), {"body": {"w": True, "x": True}, "head": True}),
                  OUTER).init(PARAMS)


def test_none_in_the_params_needs_no_entry():
    params = {"w": jnp.ones(2), "unused": None}
    tx = gc.masked(gc.scale(2.0), {"w": True})
    chex.assert_trees_all_equal(tx.update(params, tx.init(params))[0],
                                {"w": 2.0 * jnp.ones(2), "unused": None})


# --- both forms of a mask or labels function --------------------------------------------------


def tree_form(tree):
    return lambda params: jax.tree.map(lambda _, value: value, params, tree)


def path_form(tree):
    return lambda path, leaf: tree[path[0]][path[1]]


def test_every_mask_argument_takes_both_forms():
    """Each mask or labels argument as a tree, as ``fn(params)`` and as ``fn(path, leaf)``:
    Optax's numbers (given the tree) in all three."""
    cases = [
        (lambda m: gc.masked(gc.sgd(0.1, momentum=0.9), m), DECAY,
         optax.masked(optax.sgd(0.1, momentum=0.9), DECAY)),
        (lambda m: gc.apply_where(gc.sgd(0.1, momentum=0.9), m), DECAY,
         optax.masked(optax.sgd(0.1, momentum=0.9), DECAY)),
        (lambda m: gc.adamw(0.1, weight_decay=0.5, mask=m), DECAY,
         optax.adamw(0.1, weight_decay=0.5, mask=DECAY)),
        (lambda m: gc.chain(gc.add_decayed_weights(0.5, mask=m), gc.sgd(0.1)), DECAY,
         optax.chain(optax.add_decayed_weights(0.5, mask=DECAY), optax.sgd(0.1))),
        (lambda m: gc.lamb(0.1, weight_decay=0.5, mask=m), DECAY,
         optax.lamb(0.1, weight_decay=0.5, mask=DECAY)),
        (lambda m: gc.freeze_where(gc.adam(0.1), m), FROZEN,
         optax.partition({"train": optax.adam(0.1), "frozen": optax.set_to_zero()}, LABELS)),
        (lambda m: gc.selective_transform(gc.adam(0.1), freeze_mask=m), FROZEN,
         optax.selective_transform(optax.adam(0.1), freeze_mask=FROZEN)),
        (gc.freeze, FROZEN, optax.freeze(FROZEN)),
        (lambda m: gc.partition({"train": gc.adam(0.1), "frozen": gc.set_to_zero()}, m), LABELS,
         optax.partition({"train": optax.adam(0.1), "frozen": optax.set_to_zero()}, LABELS)),
        (lambda m: gc.param_groups({"train": gc.adam(0.1), "frozen": gc.set_to_zero()}, m),
         LABELS,
         optax.partition({"train": optax.adam(0.1), "frozen": optax.set_to_zero()}, LABELS)),
    ]
    for build, tree, theirs in cases:
        reference = run(theirs)
        for spec in (tree, tree_form(tree), path_form(tree)):
            chex.assert_trees_all_close(run(build(spec)), reference, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("build, message", [
    (lambda fn: gc.masked(gc.sgd(0.1), fn), r"^masked: the mask function three"),
    (lambda fn: gc.adamw(0.1, mask=fn), r"^masked: the mask function three"),
    (lambda fn: gc.freeze_where(gc.sgd(0.1), fn), r"^freeze_where: the mask function three"),
    (lambda fn: gc.param_groups({"a": gc.sgd(0.1)}, fn),
     r"^param_groups: the labels function three"),
], ids=["masked", "adamw", "freeze_where", "param_groups"])
def test_a_function_of_neither_form_is_refused_when_built(build, message):
    def three(path, leaf, extra):
        return True

    with pytest.raises(TypeError, match=message + r" has the signature \(path, leaf, extra\); it "
                                        r"must be fn\(params\) .* or fn\(path, leaf\)"):
        build(three)


def test_a_jax_partial_is_a_function():
    labels = jax.tree_util.Partial(lambda frozen, path, leaf: frozen[path[0]][path[1]], FROZEN)
    assert_same_run(gc.freeze_where(gc.adam(0.1), labels),
                    gc.freeze_where(gc.adam(0.1), FROZEN))


def test_a_function_with_an_optional_second_argument_takes_the_native_form():
    """``fn(a, b=None)`` fits both forms: ``param_groups`` calls it with ``(path, leaf)``,
    ``partition`` with the params tree (Optax's)."""
    seen = []

    def labels(first, second=None):
        seen.append(second is None)
        return "a" if second is not None else jax.tree.map(lambda _: "a", first)

    gc.param_groups({"a": gc.sgd(0.1)}, labels).init(PARAMS)
    assert seen and not any(seen)
    seen.clear()
    gc.partition({"a": gc.sgd(0.1)}, labels).init(PARAMS)
    assert seen == [True]


# --- a callable pytree is a tree ----------------------------------------------------------------


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class RegisteredMask:
    body: bool
    head: dict

    def __call__(self, *args):
        raise AssertionError("a mask that is a pytree is read, not called")


@jax.tree_util.register_pytree_with_keys_class
class ModuleMask:
    """A registered pytree node with attribute keys and ``__call__`` (as an Equinox module)."""

    def __init__(self, body, head):
        self.body, self.head = body, head

    def __call__(self, *args):
        raise AssertionError("a mask that is a pytree is read, not called")

    def tree_flatten_with_keys(self):
        return ((jax.tree_util.GetAttrKey("body"), self.body),
                (jax.tree_util.GetAttrKey("head"), self.head)), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


@pytest.mark.parametrize("cls", [RegisteredMask, ModuleMask])
def test_a_callable_pytree_mask_is_read_as_a_tree(cls):
    mask = cls(body=False, head={"w": True, "b": False})
    as_dict = {"body": False, "head": {"w": True, "b": False}}
    assert_same_run(gc.masked(gc.sgd(0.1, momentum=0.9), mask),
                    optax.masked(optax.sgd(0.1, momentum=0.9), as_dict))
    assert_same_run(gc.freeze_where(gc.sgd(0.1), mask),
                    gc.freeze_where(gc.sgd(0.1), as_dict))
    labels = cls(body="a", head={"w": "b", "b": "a"})
    assert_same_run(gc.param_groups({"a": gc.sgd(0.1), "b": gc.sgd(0.3)}, labels),
                    optax.partition({"a": optax.sgd(0.1), "b": optax.sgd(0.3)},
                                    {"body": "a", "head": {"w": "b", "b": "a"}}))


# --- empty params -------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [
    lambda: gc.masked(gc.sgd(0.1, momentum=0.9), True),
    lambda: gc.masked(gc.sgd(0.1, momentum=0.9), {}),
    lambda: gc.freeze_where(gc.adam(0.1), lambda path, leaf: True),
    lambda: gc.partition({"a": gc.adam(0.1), "b": gc.sgd(0.1)}, "a"),
    lambda: gc.partition({"a": gc.adam(0.1)}, lambda params: {}),
    lambda: gc.param_groups({"a": gc.adam(0.1)}, lambda path, leaf: "a"),
    lambda: gc.adamw(0.1, mask={}),
], ids=["masked_true", "masked_empty_tree", "freeze_where", "partition_label",
        "partition_fn", "param_groups", "adamw"])
def test_empty_params_give_an_empty_state_and_update(build):
    tx = build()
    state = tx.init({})
    updates, new_state = jax.jit(tx.update)({}, state, {})
    assert updates == {}
    chex.assert_trees_all_equal_structs(new_state, state)


def test_empty_params_match_optax():
    ours = gc.masked(gc.sgd(0.1, momentum=0.9), True)
    theirs = optax.masked(optax.sgd(0.1, momentum=0.9), True)
    state, reference = ours.init({}), theirs.init({})
    assert gc.find_state(state, "buffer") == reference.inner_state[0].trace == {}
    assert ours.update({}, state, {})[0] == theirs.update({}, reference, {})[0] == {}
    ours = gc.partition({"a": gc.sgd(0.1, momentum=0.9)}, "a")
    theirs = optax.partition({"a": optax.sgd(0.1, momentum=0.9)}, "a")
    state, reference = ours.init({}), theirs.init({})
    assert (gc.find_state(state, "buffer") == reference.inner_states["a"].inner_state[0].trace
            == {})
    assert ours.update({}, state, {})[0] == theirs.update({}, reference, {})[0] == {}


# --- optax.tree.map_params ------------------------------------------------------------------


@pytest.mark.parametrize("build", [
    lambda: gc.masked(gc.sgd(0.1, momentum=0.9), DECAY),
    lambda: gc.masked(gc.sgd(0.1, momentum=0.9), lambda path, leaf: leaf.ndim > 1),
    lambda: gc.partition({"decay": gc.sgd(0.1, momentum=0.9), "no": gc.sgd(0.2, momentum=0.5)},
                         jax.tree.map(lambda d: "decay" if d else "no", DECAY)),
    lambda: gc.param_groups({"decay": gc.sgd(0.1, momentum=0.9), "no": gc.identity()},
                            lambda path, leaf: "decay" if path[-1] == "w" else "no"),
    lambda: gc.freeze_where(gc.sgd(0.1, momentum=0.9), FROZEN),
], ids=["masked_tree", "masked_path_fn", "partition_tree", "param_groups_fn", "freeze_where"])
def test_optax_map_params_reaches_the_inner_states(build):
    """``map_params`` replaces every params-shaped tree in the state (the momentum) and, with
    ``transform_non_params``, every other field (counts, hyperparameters)."""
    tx = build()
    state = tx.init(PARAMS)
    mapped = optax.tree.map_params(tx, lambda x: jnp.full_like(x, 7.0), state,
                                   transform_non_params=lambda x: None)
    kept = jax.tree.leaves(mapped)
    momentum = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, MaskedNode))
    assert kept and all(np.all(np.asarray(x) == 7.0) for x in kept)
    assert all(x.shape in {p.shape for p in jax.tree.leaves(PARAMS)} for x in kept)
    assert len(kept) == sum(getattr(x, "shape", ()) != () for x in momentum)


def test_map_params_on_masked_and_partition_matches_optax():
    f = lambda x: 2.0 * x + 1.0  # noqa: E731
    labels = jax.tree.map(lambda d: "decay" if d else "no", DECAY)
    for ours, theirs, ours_trace, theirs_trace in [
        (gc.masked(gc.sgd(0.1, momentum=0.9), DECAY),
         optax.masked(optax.sgd(0.1, momentum=0.9), DECAY),
         lambda s: s.inner_state[1].buffer, lambda s: s.inner_state[0].trace),
        (gc.partition({"decay": gc.sgd(0.1, momentum=0.9), "no": gc.sgd(0.1, momentum=0.5)},
                      labels),
         optax.partition({"decay": optax.sgd(0.1, momentum=0.9),
                          "no": optax.sgd(0.1, momentum=0.5)}, labels),
         lambda s: [s.inner_states[k][1].buffer for k in ("decay", "no")],
         lambda s: [s.inner_states[k].inner_state[0].trace for k in ("decay", "no")]),
    ]:
        state, reference = ours.init(PARAMS), theirs.init(PARAMS)
        state, reference = (tx.update(GRADS_0, s, PARAMS)[1]
                            for tx, s in ((ours, state), (theirs, reference)))
        mapped = optax.tree.map_params(ours, f, state)
        expected = optax.tree.map_params(theirs, f, reference)
        chex.assert_trees_all_close(jax.tree.leaves(ours_trace(mapped)),
                                    jax.tree.leaves(theirs_trace(expected)))
        # counts and hyperparameters (the only scalars: no params leaf is one) are untouched
        chex.assert_trees_all_equal([x for x in jax.tree.leaves(state) if x.shape == ()],
                                    [x for x in jax.tree.leaves(mapped) if x.shape == ()])


# --- Flax nnx -------------------------------------------------------------------------------


def test_nested_masks_in_nnx_optimizer_match_plain_params():
    """``nnx.Optimizer`` gives ``init`` Param variables and ``update`` arrays: the composed
    masks (plain dicts on an ``nnx.State``) resolve the same in both and match a dict run."""
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.body = nnx.Linear(3, 2, rngs=rngs)
            self.head = nnx.Linear(2, 2, rngs=rngs)

    def build():
        return gc.freeze_where(
            gc.adamw(0.1, weight_decay=0.5,
                     mask={"body": {"kernel": True, "bias": False}, "head": True}),
            lambda path, leaf: path == ("body", "bias"))

    model = Net(nnx.Rngs(0))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    grads = nnx.grad(lambda m: jnp.sum(jnp.sin(m.head(m.body(jnp.ones((1, 3)))))))(model)
    optimizer = nnx.Optimizer(model, build(), wrt=nnx.Param)
    optimizer.update(model, grads)
    grads = nnx.to_pure_dict(grads)
    tx = build()
    updates, _ = tx.update(grads, tx.init(params), params)
    chex.assert_trees_all_close(nnx.to_pure_dict(nnx.state(model, nnx.Param)),
                                optax.apply_updates(params, updates))
    chex.assert_trees_all_equal(nnx.to_pure_dict(nnx.state(model, nnx.Param))["body"]["bias"],
                                params["body"]["bias"])
