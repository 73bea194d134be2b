"""Masks: Optax's ``masked`` numbers, masks by path or by prefix tree, state for the selected
leaves only, extras masked like the updates, and errors that name the path and change no state."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc
from gradchain.core.transformation import GradientTransformation
from gradchain.introspection.find import find_state
from gradchain.wrappers.labels import MaskedNode
from gradchain.wrappers.masked import apply_where, masked

PARAMS = {"conv": {"kernel": jnp.linspace(-1.0, 1.0, 12).reshape(2, 3, 2), "bias": jnp.ones(2)},
          "dense": {"kernel": jnp.linspace(0.5, 2.0, 6).reshape(3, 2), "bias": jnp.zeros(2)},
          "norm": {"scale": jnp.full(2, 0.5)}}
GRADS = jax.tree.map(lambda p: jnp.cos(jnp.arange(p.size, dtype=p.dtype)).reshape(p.shape) - 0.3,
                     PARAMS)


def not_a_vector(params):
    return jax.tree.map(lambda x: x.ndim != 1, params)


def two_steps(tx):
    state, update, out = tx.init(PARAMS), jax.jit(tx.update), []
    for scale in (1.0, -0.5):
        updates, state = update(jax.tree.map(lambda g: scale * g, GRADS), state, PARAMS)
        out.append(updates)
    return out, state


@pytest.mark.parametrize("mask", [not_a_vector,
                                  {"conv": {"kernel": True, "bias": False},
                                   "dense": {"kernel": True, "bias": False}, "norm": False}],
                         ids=["function", "prefix tree"])
def test_masked_matches_optax(mask):
    ours, _ = two_steps(gc.chain(masked(gc.add_decayed_weights(0.1), mask), gc.adam(0.1)))
    theirs, _ = two_steps(optax.chain(optax.masked(optax.add_decayed_weights(0.1), mask),
                                      optax.adam(0.1)))
    chex.assert_trees_all_close(ours, theirs, rtol=1e-14, atol=0)


def test_apply_where_by_path_keeps_state_for_selected_leaves_only():
    tx = apply_where(gc.sgd(0.1, momentum=0.9), lambda path, leaf: path[-1] == "kernel")
    (first, second), state = two_steps(tx)
    buffer = find_state(state, "buffer")
    assert isinstance(buffer["conv"]["bias"], MaskedNode)
    assert isinstance(buffer["norm"]["scale"], MaskedNode)
    for layer in ("conv", "dense"):
        g = GRADS[layer]["kernel"]
        chex.assert_trees_all_close(second[layer]["kernel"], -0.1 * (0.9 * g - 0.5 * g),
                                    rtol=1e-14)
        chex.assert_trees_all_equal(second[layer]["bias"], -0.5 * GRADS[layer]["bias"])
    chex.assert_trees_all_equal(first["norm"]["scale"], GRADS["norm"]["scale"])


def test_prefix_tree_matched_by_key_not_by_container_type():
    """A list of booleans for a tuple of params, a dict for a custom mapping: keys decide."""
    params = (jnp.ones(2), jnp.ones(3))
    tx = apply_where(gc.scale(2.0), [True, False])
    updates, _ = tx.update(params, tx.init(params))
    chex.assert_trees_all_equal(updates, (2.0 * jnp.ones(2), jnp.ones(3)))


def test_mask_of_the_wrong_structure_names_the_path_and_changes_no_state():
    tx = masked(gc.sgd(0.1, momentum=0.9), {"conv": True, "dense": True, "norm": True})
    state = tx.init(PARAMS)
    _, state = tx.update(GRADS, state, PARAMS)
    snapshot = jax.tree.map(np.array, state)
    cases = [
        ({"conv": True, "dense": True}, r"no entry 'norm' at <root> \(params leaf norm/scale\)"),
        ({"conv": True, "dense": {"kernel": True}, "norm": True},
         r"no entry 'bias' at dense \(params leaf dense/bias\)"),
        ({"conv": True, "dense": True, "norm": {"scale": [True, False]}},
         r"goes deeper than the params leaf norm/scale"),
        ({"conv": True, "dense": "yes", "norm": True}, r"mask at dense/bias is 'yes'"),
    ]
    for wrong, message in cases:
        with pytest.raises(ValueError, match=message):
            masked(gc.sgd(0.1), wrong).init(PARAMS)
    with pytest.raises(ValueError, match=r"does not match the updates: its entry at norm matches "
                                         r"no updates leaf"):
        tx.update({"conv": GRADS["conv"], "dense": GRADS["dense"]}, state, PARAMS)
    with pytest.raises(ValueError, match=r"no entry 'extra' at <root> \(updates leaf extra\)"):
        tx.update({**GRADS, "extra": jnp.ones(2)}, state, PARAMS)
    chex.assert_trees_all_equal(state, snapshot)
    chex.assert_trees_all_equal(tx.update(GRADS, state, PARAMS),
                                tx.update(GRADS, snapshot, PARAMS))


def test_traced_or_elementwise_mask_is_refused():
    with pytest.raises(ValueError, match=r"mask at <root> is a traced value"):
        jax.jit(lambda flag: apply_where(gc.scale(2.0), flag).init(jnp.ones(2)))(True)
    with pytest.raises(ValueError, match=r"mask at conv/bias is an array of shape \(2,\); it "
                                         r"needs one value per leaf"):
        apply_where(gc.scale(2.0), lambda path, leaf: np.asarray(leaf) > 0).init(PARAMS)


def _add_offset():
    """A transformation that reads a keyword extra with the params' structure."""
    def update(updates, state, params=None, *, offset, **extra):
        return jax.tree.map(jnp.add, updates, offset), state
    return GradientTransformation(lambda params: (), update, name="add_offset")


def test_mask_compatible_extra_args_masks_extras_like_the_updates():
    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    offset = {"a": jnp.full(2, 10.0), "b": jnp.full(3, 20.0)}
    tx = masked(_add_offset(), {"a": True, "b": False}, mask_compatible_extra_args=True)
    updates, _ = tx.update(params, tx.init(params), params, offset=offset)
    chex.assert_trees_all_equal(updates, {"a": jnp.full(2, 11.0), "b": jnp.ones(3)})
