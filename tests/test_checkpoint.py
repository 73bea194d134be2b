"""Optimizer state checkpoints: save mid-run with Orbax, restore, continue, bit-identical.

The restore target is the abstract tree (shapes and dtypes) of a *fresh* ``tx.init``, as a new
process would build it, so the test also checks that the state's structure (tuples of
NamedTuples, hyperparameter dicts) comes back as such. Three cases: a scheduled learning rate
(its value is recomputed from the restored step count), hyperparameters changed at run time
before saving (their new values must survive the round trip), and complex params (a complex128
first moment beside a float64 second moment).
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import gradchain as gc
from problems import gradient, initial_params
from registry import ADAM, COMPLEX_ADAM, SGD_MOMENTUM, scheduled

BEFORE, AFTER = 4, 4


@functools.partial(jax.jit, static_argnums=0)
def step(config, params, state):
    u, state = config.gradchain().update(gradient(params), state, params)
    return gc.apply_updates(params, u), state


def run(config, params, state, steps):
    for _ in range(steps):
        params, state = step(config, params, state)
    return params, state


def set_hyperparams(state, **values):
    """``state`` with ``hyperparams[name] = value`` in every part that has ``name``."""
    found = set()

    def replace(path, leaf):
        if (len(path) >= 2 and path[-2] == jax.tree_util.GetAttrKey("hyperparams")
                and isinstance(path[-1], jax.tree_util.DictKey) and path[-1].key in values):
            found.add(path[-1].key)
            return jnp.asarray(values[path[-1].key], leaf.dtype)
        return leaf

    state = jax.tree_util.tree_map_with_path(replace, state)
    assert found == set(values), f"no hyperparams {set(values) - found} in the state"
    return state


def no_change(state):
    return state


def new_rates(state):
    return set_hyperparams(state, learning_rate=0.005, momentum=0.5)


CASES = [
    pytest.param(scheduled(ADAM), no_change, id="adam-scheduled-learning-rate"),
    pytest.param(SGD_MOMENTUM, new_rates, id="sgd-momentum-changed-at-run-time"),
    pytest.param(COMPLEX_ADAM, no_change, id="adam-complex-params"),
]


@pytest.mark.parametrize("config, change", CASES)
def test_resumed_run_is_bit_identical_to_uninterrupted_run(tmp_path, config, change):
    tx, start = config.gradchain(), initial_params(config.dtype("float64"))
    params, state = run(config, start, tx.init(start), BEFORE)
    saved = change(state)

    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "checkpoint", {"params": params, "state": saved})
    checkpointer.wait_until_finished()
    target = {"params": start, "state": tx.init(start)}
    restored = checkpointer.restore(tmp_path / "checkpoint",
                                    jax.tree.map(ocp.utils.to_shape_dtype_struct, target))

    # Tree structures include the node types: NamedTuples came back as NamedTuples.
    chex.assert_trees_all_equal_structs(restored["state"], saved)
    chex.assert_trees_all_equal(restored, {"params": params, "state": saved})

    expected = run(config, params, saved, AFTER)
    resumed = run(config, restored["params"], restored["state"], AFTER)
    chex.assert_trees_all_equal(resumed, expected)
    if change is not no_change:
        unchanged = run(config, params, state, AFTER)
        assert not np.array_equal(unchanged[0]["w"], expected[0]["w"])
