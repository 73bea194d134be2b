"""Introspection: the printed tree of a wrapped optimizer, fetching a named piece of state (a
layer's second moment, the skip counter) without knowing the nesting, state descriptions and
sizes."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc
from gradchain.introspection.describe import describe, describe_state, state_bytes
from gradchain.introspection.find import find_state, find_states
from gradchain.wrappers.partition import param_groups

PARAMS = {"encoder": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)},
          "head": {"kernel": jnp.ones((2, 1)), "bias": jnp.zeros(1)}}
GRADS = jax.tree.map(lambda p: jnp.full_like(p, 0.5), PARAMS)


def decay_label(path, leaf):
    return "decay" if leaf.ndim > 1 else "no_decay"


def grouped_adam():
    return param_groups({"decay": gc.adamw(0.1, weight_decay=0.01), "no_decay": gc.adam(0.1)},
                        decay_label)


def test_print_shows_the_tree_of_primitives_with_hyperparameters():
    tx = param_groups({"decay": gc.chain(gc.scale(2.0), gc.scale_by_learning_rate(0.1)),
                       "no_decay": gc.scale_by_learning_rate(0.5)}, decay_label)
    assert describe(tx) == repr(tx) == "\n".join([
        "param_groups(labels=<function decay_label>)",
        "  ['decay'] chain()",
        "    scale(step_size=2.0)",
        "    scale_by_learning_rate(learning_rate=0.1, flip_sign=True)",
        "  ['no_decay'] scale_by_learning_rate(learning_rate=0.5, flip_sign=True)",
    ])


def test_second_moment_of_one_layer_by_name():
    tx = grouped_adam()
    _, state = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    v = find_state(state, "ema", hyperparam="b2", path=("encoder", "kernel"))
    chex.assert_trees_all_close(v, (1 - 0.999) * 0.25 * jnp.ones((3, 2)), rtol=1e-14)
    chex.assert_trees_all_equal(find_state(state, "ema", hyperparam="b2", path="head/bias"),
                                find_state(state, "ema", hyperparam="b2", within="no_decay")
                                ["head"]["bias"])
    first = find_states(state, "ema", hyperparam="b1")
    assert [where for where, _ in first] == ["inner_states/decay/0/branches/0/ema",
                                             "inner_states/no_decay/1/branches/0/ema"]
    for where, value in first:  # ``where`` is the path of the field: keys joined by "/"
        chex.assert_trees_all_equal(_at(state, where), value)


def _at(node, where):
    """The node at the path ``where`` (NamedTuple fields, dict keys, tuple indices)."""
    for key in where.split("/"):
        node = (getattr(node, key) if hasattr(node, "_fields") and key in node._fields
                else node[int(key)] if isinstance(node, tuple) else node[key])
    return node


def test_lookup_errors_say_what_there_is():
    tx = grouped_adam()
    state = tx.init(PARAMS)
    with pytest.raises(KeyError, match=r"no state field 'nu' matches; the fields are \[.*'ema'"):
        find_state(state, "nu")
    with pytest.raises(ValueError, match=r"4 state fields called 'ema' match "
                                         r"\(inner_states/decay/0/branches/0/ema, "):
        find_state(state, "ema")
    with pytest.raises(KeyError, match=r"params leaf encoder/bias is not owned"):
        find_state(state, "ema", hyperparam="b2", within="decay", path="encoder/bias")
    with pytest.raises(KeyError, match=r"params leaf encoder/bias is not owned"):
        find_state(state.inner_states["decay"], "ema", hyperparam="b2", path="encoder/bias")
    with pytest.raises(KeyError, match=r"no params path encoder/w .*keys at encoder are "
                                       r"\['bias', 'kernel'\]"):
        find_state(state, "ema", hyperparam="b2", within="decay", path="encoder/w")


def test_describe_state_names_every_field_and_sums_bytes():
    state = grouped_adam().init(PARAMS)
    text = describe_state(state)
    assert text.splitlines()[0] == "PartitionState"
    assert "ema: 2 arrays, 64 B {encoder/kernel: float64[3, 2], head/kernel: float64[2, 1]}" \
        in text
    assert "hyperparams: {b2=float64[] = 0.999}" in text
    moments = 2 * 8 * sum(x.size for x in jax.tree.leaves(PARAMS))
    # Scalars: 15 hyperparameters and their recorded constructor values, step counts.
    assert moments < state_bytes(state) == state_bytes(jax.eval_shape(grouped_adam().init,
                                                                        PARAMS)) < moments + 300
    assert state_bytes(state) == sum(np.asarray(x).nbytes for x in jax.tree.leaves(state))


def test_nested_wrappers_are_described():
    tx = gc.chain(gc.clip_by_global_norm(1.0), gc.MultiSteps(gc.skip_non_finite(
        gc.freeze_where(gc.sgd(0.1), {"encoder": True, "head": False}), give_up_after=3), 2))
    assert describe(tx).splitlines()[:5] == [
        "chain()",
        "  clip_by_global_norm(max_norm=1.0)",
        "  MultiSteps(k=2, average=True, dtype=dtype('float32'))",
        "    skip_non_finite(give_up_after=3)",
        "      freeze_where(frozen={'encoder': True, 'head': False})",
    ]


def test_one_path_format_for_fields_hyperparameters_and_leaves():
    """A place in a state is written one way everywhere: keys from the root joined by "/"
    (fields and dict keys by name, indices by number), and read back in that format."""
    tx = grouped_adam()
    state = tx.init(PARAMS)
    where, _ = find_states(state, "ema", hyperparam="b1", within="decay")[0]
    assert where == "inner_states/decay/0/branches/0/ema"
    assert "inner_states/decay/0/branches/0/b1" in gc.get_hyperparams(state)
    new = gc.set_hyperparams(tx, state, {"inner_states/decay/0/branches/0/b1": 0.5})
    assert float(gc.get_hyperparam(new, "inner_states/decay/0/branches/0/b1")) == 0.5
    chex.assert_trees_all_equal(find_state(state, "ema", hyperparam="b1", path="encoder/kernel"),
                                jnp.zeros((3, 2)))
    renamed = {"encoder": {"w": GRADS["encoder"]["kernel"], "bias": GRADS["encoder"]["bias"]},
               "head": GRADS["head"]}
    with pytest.raises(ValueError, match="^param_groups: the updates do not match the params: "
                                         "encoder/kernel is in the params but not in the "
                                         "updates; encoder/w is in the updates"):
        tx.update(renamed, state, PARAMS)
    with pytest.raises(ValueError, match="^apply_updates: updates leaf at encoder/kernel has "
                                         r"shape \(2, 1\)"):
        gc.apply_updates(PARAMS, {**GRADS, "encoder": {**GRADS["encoder"],
                                                       "kernel": GRADS["head"]["kernel"]}})
    mask = {"encoder": {"kernel": True, "bias": False}, "head": {"kernel": True}}
    with pytest.raises(ValueError, match="^masked: the mask tree does not match the params: it "
                                         "has no entry 'bias' at head \\(params leaf head/bias\\)"):
        gc.masked(gc.sgd(0.1), mask).init(PARAMS)
