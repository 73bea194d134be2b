"""Bad input is refused with a message that names what is wrong, or computes the right thing.

Each table row is one case: what is built or called, the exception type and the words its
message must contain (the argument, the value, the tree path; not the function name that starts
the message, which follows the public function the user called), or the numbers it must give.

- Hyperparameters: infinite, NaN, boolean, string, list and non-scalar values are refused when
  the transformation is built; numbers, 0-d arrays, traced values and schedules are accepted.
- ``eps = 0``: a leaf that has seen only zero gradients gets a zero update (not NaN); every
  other leaf gets Optax's numbers exactly. Adadelta refuses ``eps = 0`` (it would never step).
- Gradient accumulation refuses a gradient of another shape than its buffer.
- ``apply_updates`` keeps the param wherever ``update`` leaves a ``None``.
- ``update`` refuses a state its ``init`` did not make (``None``, another optimizer's), naming
  the part that does not fit, when traced (nothing is added to the compiled step).
- A non-transformation given where a transformation is expected is refused by argument name.
- Updates come back in the params' dtype (float32 gradients, bfloat16 params: bfloat16).
- A tree mismatch names the leaf that is missing and the one that is extra.
"""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc

INF, NAN = float("inf"), float("nan")


def _raises(error, words, build):
    with pytest.raises(error) as caught:
        build()
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


# (case, builder, exception, words the message contains)
REFUSED_HYPERPARAMETERS = [
    ("adam-inf", lambda: gc.adam(INF), ValueError, ["learning_rate=inf", "[0, inf)"]),
    ("adam-minus-inf", lambda: gc.adam(-INF), ValueError, ["learning_rate=-inf"]),
    ("adam-nan", lambda: gc.adam(NAN), ValueError, ["learning_rate=nan"]),
    ("adam-b2-inf", lambda: gc.adam(1e-3, b2=INF), ValueError, ["b2=inf", "[0, 1)"]),
    ("adam-eps-inf", lambda: gc.adam(1e-3, eps=INF), ValueError, ["eps=inf", "[0, inf)"]),
    ("adam-eps_root-inf", lambda: gc.adam(1e-3, eps_root=np.float32(INF)), ValueError,
     ["eps_root=", "inf"]),
    ("rmsprop-decay-inf", lambda: gc.rmsprop(0.1, decay=-INF), ValueError, ["decay=-inf"]),
    ("sgd-weight_decay-inf", lambda: gc.sgd(0.1, weight_decay=INF), ValueError,
     ["weight_decay=inf"]),
    ("scale-inf", lambda: gc.scale(jnp.asarray(INF)), ValueError, ["step_size=", "inf"]),
    ("adam-true", lambda: gc.adam(True), TypeError, ["learning_rate", "boolean True"]),
    ("adam-numpy-bool", lambda: gc.adam(np.bool_(False)), TypeError,
     ["learning_rate", "boolean"]),
    ("adam-b1-true", lambda: gc.adam(1e-3, b1=True), TypeError, ["b1", "boolean"]),
    ("sgd-momentum-bool-array", lambda: gc.sgd(0.1, momentum=jnp.asarray(True)), TypeError,
     ["momentum", "boolean"]),
    ("lookahead-alpha-true", lambda: gc.lookahead(gc.sgd(0.1), slow_step_size=True), TypeError,
     ["slow_step_size", "boolean"]),
    ("adam-string", lambda: gc.adam("1e-3"), TypeError, ["learning_rate", "str", "'1e-3'"]),
    ("rmsprop-eps-string", lambda: gc.rmsprop(0.1, eps="1e-8"), TypeError, ["eps", "str"]),
    ("adam-none", lambda: gc.adam(None), TypeError, ["learning_rate", "None"]),
    ("adam-list", lambda: gc.adam([1e-3, 1e-4]), TypeError,
     ["learning_rate", "list", "[0.001, 0.0001]"]),
    ("adam-tuple", lambda: gc.adam(1e-3, b1=(0.9,)), TypeError, ["b1", "tuple"]),
    ("adam-array", lambda: gc.adam(jnp.ones(3)), ValueError,
     ["learning_rate must be a scalar", "shape (3,)"]),
    ("adam-one-element-array", lambda: gc.adam(1e-3, b2=np.array([0.999])), ValueError,
     ["b2 must be a scalar", "shape (1,)"]),
    ("sgd-matrix", lambda: gc.sgd(np.full((2, 2), 0.1)), ValueError,
     ["learning_rate must be a scalar", "shape (2, 2)"]),
    ("clip-nan", lambda: gc.clip(NAN), ValueError, ["max_delta=nan", "[0, inf]"]),
    ("adadelta-eps-zero", lambda: gc.adadelta(eps=0.0), ValueError, ["eps=0.0", "(0, inf)"]),
    ("scale_by_delta_rms-eps-zero", lambda: gc.scale_by_delta_rms(eps=0), ValueError,
     ["eps=0", "(0, inf)"]),
]


@pytest.mark.parametrize("build, error, words", [r[1:] for r in REFUSED_HYPERPARAMETERS],
                         ids=[r[0] for r in REFUSED_HYPERPARAMETERS])
def test_bad_hyperparameter_is_refused_naming_argument(build, error, words):
    _raises(error, words, build)


def _schedule(count):
    return 1e-3 * (1.0 + count)


ACCEPTED_HYPERPARAMETERS = {
    "int": lambda: gc.adam(1),
    "numpy-float32": lambda: gc.adam(np.float32(1e-3), b1=np.float64(0.9)),
    "0-d-array": lambda: gc.adam(jnp.asarray(1e-3), eps=np.asarray(1e-8)),
    "schedule": lambda: gc.adam(_schedule),
    "clip-inf-is-no-clipping": lambda: gc.chain(gc.clip(INF), gc.clip_by_global_norm(INF),
                                                gc.sgd(1.0)),
}


@pytest.mark.parametrize("build", ACCEPTED_HYPERPARAMETERS.values(),
                         ids=ACCEPTED_HYPERPARAMETERS.keys())
def test_good_hyperparameter_builds_and_steps(build):
    params = {"w": jnp.array([1.0, -2.0])}
    tx = build()
    updates, _ = tx.update(params, tx.init(params), params)
    chex.assert_tree_all_finite(updates)


def test_traced_hyperparameters_are_not_checked():
    """Under ``jit`` the value is a tracer: no check, and an out-of-range one still builds."""
    params = {"w": jnp.array([1.0, -2.0])}

    @jax.jit
    def step(lr, b1):
        tx = gc.adam(lr, b1=b1)
        return tx.update(params, tx.init(params), params)[0]

    chex.assert_trees_all_close(step(1e-3, 0.9), gc.adam(1e-3).update(
        params, gc.adam(1e-3).init(params), params)[0])
    assert not np.all(np.isfinite(step(INF, 0.9)["w"]))  # built and run with the value given


# eps = 0: leaf "w" has non-zero gradients, leaf "z" only zeros (0/0 in the preconditioner).
EPS_ZERO = {
    "adam": (lambda: gc.adam(0.1, eps=0.0), lambda: optax.adam(0.1, eps=0.0)),
    "amsgrad": (lambda: gc.amsgrad(0.1, eps=0.0), lambda: optax.amsgrad(0.1, eps=0.0)),
    "nadam": (lambda: gc.nadam(0.1, eps=0.0), lambda: optax.nadam(0.1, eps=0.0)),
    "radam": (lambda: gc.radam(0.1, eps=0.0), lambda: optax.radam(0.1, eps=0.0)),
    "rmsprop": (lambda: gc.rmsprop(0.1, eps=0.0), lambda: optax.rmsprop(0.1, eps=0.0)),
    "rmsprop-eps-outside": (lambda: gc.rmsprop(0.1, eps=0.0, eps_in_sqrt=False),
                            lambda: optax.rmsprop(0.1, eps=0.0, eps_in_sqrt=False)),
    "rmsprop-centered": (lambda: gc.rmsprop(0.1, eps=0.0, centered=True),
                         lambda: optax.rmsprop(0.1, eps=0.0, centered=True)),
    "adagrad": (lambda: gc.adagrad(0.1, eps=0.0, initial_accumulator_value=0.0),
                lambda: optax.adagrad(0.1, eps=0.0, initial_accumulator_value=0.0)),
    "lamb": (lambda: gc.lamb(0.1, eps=0.0), lambda: optax.lamb(0.1, eps=0.0)),
}
EPS_PARAMS = {"w": jnp.array([1.0, -2.0, 0.5]), "z": jnp.array([0.3, -0.7])}
EPS_GRADS = [{"w": jnp.array(g), "z": jnp.zeros(2)}
             for g in ([0.4, 0.5, -1.0], [-0.2, -0.3, 0.2], [0.1, 0.1, 0.0])]


def _run(tx, apply):
    params, state = EPS_PARAMS, tx.init(EPS_PARAMS)
    for grads in EPS_GRADS:
        updates, state = tx.update(grads, state, params)
        params = apply(params, updates)
    return params


@pytest.mark.parametrize("ours, theirs", EPS_ZERO.values(), ids=EPS_ZERO.keys())
def test_eps_zero_gives_zero_update_on_zero_gradients_and_optax_numbers_elsewhere(ours, theirs):
    """Optax gives NaN on the zero-gradient leaf (0/0) for all but Adagrad, which gives 0 as
    gradchain does; on the other leaf both give the same numbers."""
    mine = _run(ours(), gc.apply_updates)
    reference = _run(theirs(), optax.apply_updates)
    np.testing.assert_array_equal(mine["z"], EPS_PARAMS["z"])
    np.testing.assert_allclose(mine["w"], reference["w"], rtol=1e-14, atol=0)
    assert np.all(np.isfinite(reference["w"]))
    assert not np.allclose(mine["w"], EPS_PARAMS["w"])


ACCUMULATORS = {
    "accumulate_gradients": lambda: gc.accumulate_gradients(gc.sgd(0.1), 2),
    "MultiSteps": lambda: gc.MultiSteps(gc.sgd(0.1), 2),
}


@pytest.mark.parametrize("build", ACCUMULATORS.values(), ids=ACCUMULATORS.keys())
@pytest.mark.parametrize("grad_shape", [(1,), (3, 1), ()], ids=str)
def test_accumulation_refuses_gradient_of_another_shape(build, grad_shape):
    params = {"a": {"w": jnp.ones(3)}, "b": jnp.ones(2)}
    tx = build()
    grads = {"a": {"w": jnp.ones(grad_shape)}, "b": jnp.ones(2)}
    _raises(ValueError, ["a/w", f"shape {grad_shape}", "(3,)", "accumulation buffer"],
            lambda: tx.update(grads, tx.init(params), params))


# Params with None leaves and gradient trees with None where nothing is trained: whatever
# update returns there, apply_updates keeps the param.
NONE_PARAMS = {"a": jnp.array([1.0, -1.0]), "none": None, "pair": (jnp.array(0.5), None)}
NONE_OPTIMIZERS = {
    "sgd": lambda: gc.sgd(0.1),
    "adam": lambda: gc.adam(0.1),
    "adamw": lambda: gc.adamw(0.1, weight_decay=0.1),
    "lookahead": lambda: gc.lookahead(gc.adam(0.1), sync_period=1),
    "accumulate": lambda: gc.accumulate_gradients(gc.adam(0.1), 1),
    "clip+sgd": lambda: gc.chain(gc.clip_by_global_norm(1.0), gc.sgd(0.1, momentum=0.9)),
    "param_groups": lambda: gc.param_groups({"x": gc.adam(0.1), "y": gc.sgd(0.1)},
                                            lambda path, leaf: "x" if path[0] == "a" else "y"),
    "freeze_where": lambda: gc.freeze_where(gc.adam(0.1), lambda path, leaf: path[0] == "pair"),
    "skip_non_finite": lambda: gc.skip_non_finite(gc.adam(0.1)),
}


@pytest.mark.parametrize("build", NONE_OPTIMIZERS.values(), ids=NONE_OPTIMIZERS.keys())
def test_apply_updates_keeps_params_where_update_gives_none(build):
    tx = build()
    updates, _ = jax.jit(tx.update)(NONE_PARAMS, tx.init(NONE_PARAMS), NONE_PARAMS)
    assert updates["none"] is None and updates["pair"][1] is None
    new = jax.jit(gc.apply_updates)(NONE_PARAMS, updates)
    assert jax.tree.structure(new) == jax.tree.structure(NONE_PARAMS)
    assert new["none"] is None and new["pair"][1] is None
    np.testing.assert_array_equal(new["a"], NONE_PARAMS["a"] + updates["a"])


# (case, params, updates, expected params or (exception, words))
APPLY_UPDATES = [
    ("none-update-on-leaf", {"a": jnp.ones(2), "b": jnp.ones(1)},
     {"a": jnp.ones(2), "b": None}, {"a": jnp.full(2, 2.0), "b": jnp.ones(1)}),
    ("none-update-on-subtree", {"a": jnp.ones(2), "sub": {"x": jnp.ones(1), "y": None}},
     {"a": jnp.ones(2), "sub": None}, {"a": jnp.full(2, 2.0),
                                       "sub": {"x": jnp.ones(1), "y": None}}),
    ("none-in-list", [jnp.ones(2), None], [jnp.ones(2), None], [jnp.full(2, 2.0), None]),
    ("array-where-params-are-none", {"a": jnp.ones(2), "b": None},
     {"a": jnp.ones(2), "b": jnp.ones(1)}, (ValueError, ["leaf at b is an array", "None"])),
    ("missing-leaf", {"a": jnp.ones(2), "b": jnp.ones(1)}, {"a": jnp.ones(2)},
     (ValueError, [": b is in the params but not in the updates"])),
    ("other-shape", {"a": jnp.ones(2)}, {"a": jnp.ones((1, 2))},
     (ValueError, ["leaf at a has shape", "(1, 2)", "(2,)"])),
]


@pytest.mark.parametrize("params, updates, expected", [r[1:] for r in APPLY_UPDATES],
                         ids=[r[0] for r in APPLY_UPDATES])
def test_apply_updates(params, updates, expected):
    if isinstance(expected, tuple) and isinstance(expected[0], type):
        _raises(*expected, lambda: gc.apply_updates(params, updates))
    else:
        chex.assert_trees_all_equal(gc.apply_updates(params, updates), expected)


STATE_PARAMS = {"w": jnp.array([1.0, -2.0])}


def _state_of(build):
    return lambda: build().init(STATE_PARAMS)


# (case, transformation, state given to update, words: the part that does not fit, what it
# got, what its init returns)
FOREIGN_STATES = [
    ("adam-none", lambda: gc.adam(0.1), lambda: None, ["None", "a tuple of 3 states"]),
    ("adam-sgd-momentum-state", lambda: gc.adam(0.1), _state_of(lambda: gc.sgd(0.1, 0.9)),
     ["part for divide_by_sqrt (at 1) is a MomentumState", "BranchState"]),
    ("adam-rmsprop-state", lambda: gc.adam(0.1), _state_of(lambda: gc.rmsprop(0.1)),
     ["tuple of 4 states", "tuple of 3 states"]),
    ("sgd-adam-state", lambda: gc.sgd(0.1), _state_of(lambda: gc.adam(0.1)),
     ["part for identity (at 1) is a BranchState", "EmptyState"]),
    ("ema-none", lambda: gc.ema(0.9), lambda: None, ["None", "EmaState"]),
    ("scale_by_adam-scale-state", lambda: gc.scale_by_adam(), _state_of(lambda: gc.scale(2.0)),
     ["ScaleState", "BranchState"]),
    ("lookahead-inner-state", lambda: gc.lookahead(gc.adam(0.1)), _state_of(lambda: gc.adam(0.1)),
     ["a tuple of 3 states", "LookaheadState"]),
    ("MultiSteps-none", lambda: gc.MultiSteps(gc.adam(0.1), 2), lambda: None,
     ["None", "MultiStepsState"]),
    ("MultiSteps-foreign-inner", lambda: gc.MultiSteps(gc.adam(0.1), 2),
     lambda: gc.MultiSteps(gc.adam(0.1), 2).init(STATE_PARAMS)._replace(
         inner_opt_state=gc.sgd(0.1, 0.9).init(STATE_PARAMS)),
     ["part for adam > divide_by_sqrt (at inner_opt_state/1) is a MomentumState",
      "BranchState"]),
    ("optax-state", lambda: gc.adam(0.1), lambda: optax.adam(0.1).init(STATE_PARAMS),
     ["a tuple of 3 states", "a tuple of 2 states"]),
]


@pytest.mark.parametrize("build, state, words", [r[1:] for r in FOREIGN_STATES],
                         ids=[r[0] for r in FOREIGN_STATES])
def test_foreign_or_missing_state_is_refused_when_traced(build, state, words):
    tx = build()
    _raises(TypeError, [*words, "init"],
            lambda: jax.jit(tx.update)(STATE_PARAMS, state(), STATE_PARAMS))


def test_the_state_check_adds_nothing_to_the_compiled_step():
    tx = gc.adam(0.1)
    state = tx.init(STATE_PARAMS)
    checked = jax.make_jaxpr(tx.update)(STATE_PARAMS, state, STATE_PARAMS)
    unchecked = jax.make_jaxpr(tx.update.__wrapped__)(STATE_PARAMS, state, STATE_PARAMS)
    assert str(checked) == str(unchecked)


# (case, builder, words: the argument as the user named it)
NOT_TRANSFORMATIONS = [
    ("chain-int", lambda: gc.chain(1), ["transformations[0] is 1"]),
    ("chain-string", lambda: gc.chain(gc.identity(), "adam"), ["transformations[1] is 'adam'"]),
    ("chain-function", lambda: gc.chain(gc.adam), ["transformations[0]", "call it"]),
    ("branch", lambda: gc.branch(gc.identity(), 3, combine=jnp.add), ["transformations[1]"]),
    ("lookahead-string", lambda: gc.lookahead("adam"), ["inner is 'adam'"]),
    ("lookahead-function", lambda: gc.lookahead(gc.adam), ["inner is <function adam",
                                                           "call it", "adam(...)"]),
    ("accumulate_gradients", lambda: gc.accumulate_gradients(gc.adam, 2), ["inner is"]),
    ("MultiSteps", lambda: gc.MultiSteps(gc.sgd, 2), ["opt is <function sgd"]),
    ("skip_non_finite", lambda: gc.skip_non_finite(None), ["inner is None"]),
    ("apply_if_finite", lambda: gc.apply_if_finite(1, 3), ["inner is 1"]),
    ("masked", lambda: gc.masked(gc.sgd, {"w": True}), ["inner is <function sgd"]),
    ("apply_where", lambda: gc.apply_where("sgd", lambda path, leaf: True), ["inner is 'sgd'"]),
    ("freeze_where", lambda: gc.freeze_where(gc.adam, lambda path, leaf: True),
     ["optimizer is <function adam"]),
    ("selective_transform", lambda: gc.selective_transform(0.1, freeze_mask={"w": True}),
     ["optimizer is 0.1"]),
    ("partition", lambda: gc.partition({"a": gc.sgd(0.1), "b": 3}, {"w": "a"}),
     ["transforms['b'] is 3"]),
    ("param_groups", lambda: gc.param_groups({"a": gc.adam}, lambda path, leaf: "a"),
     ["groups['a'] is <function adam"]),
    ("switch_to_sgd", lambda: gc.switch_to_sgd(gc.adam(0.1), gc.sgd), ["sgd is <function sgd"]),
    ("divide_by_sqrt", lambda: gc.divide_by_sqrt(gc.identity(), gc.square),
     ["denominator is <function square"]),
    ("per_parameter_step", lambda: gc.per_parameter_step(gc.ema, gc.identity()),
     ["direction is <function ema"]),
]


@pytest.mark.parametrize("build, words", [r[1:] for r in NOT_TRANSFORMATIONS],
                         ids=[r[0] for r in NOT_TRANSFORMATIONS])
def test_non_transformation_is_refused_naming_the_argument(build, words):
    _raises(TypeError, [*words, "not a gradient transformation"], build)


BF16_PARAMS = {"w": jnp.array([1.0, -2.0, 0.5], jnp.bfloat16)}
F32_GRADS = {"w": jnp.array([0.3, -0.01, 2.0], jnp.float32)}
DTYPE_OPTIMIZERS = {
    "sgd": lambda: gc.sgd(0.1),
    "sgd-nesterov": lambda: gc.sgd(0.1, momentum=0.9, nesterov=True),
    "adam": lambda: gc.adam(0.1),
    "adam-mu-float32": lambda: gc.adam(0.1, mu_dtype=jnp.float32),
    "rmsprop-centered": lambda: gc.rmsprop(0.1, centered=True),
    "adagrad": lambda: gc.adagrad(0.1),
    "radam": lambda: gc.radam(0.1),
    "lookahead": lambda: gc.lookahead(gc.adam(0.1), sync_period=1),
    "accumulate": lambda: gc.accumulate_gradients(gc.adam(0.1), 1),
    "optax-then-gradchain": lambda: optax.chain(optax.scale_by_adam(), gc.scale(-0.1)),
    # mu_dtype: Optax's adam otherwise turns its bfloat16 moment into float32 (lax.cond refuses)
    "switch_to_sgd-from-optax": lambda: gc.switch_to_sgd(optax.adam(0.1, mu_dtype=jnp.bfloat16),
                                                         gc.sgd(1.0)),
}


@pytest.mark.parametrize("build", DTYPE_OPTIMIZERS.values(), ids=DTYPE_OPTIMIZERS.keys())
def test_updates_come_back_in_the_params_dtype(build):
    """bfloat16 params, float32 gradients: bfloat16 updates, the float32 result rounded once
    (the update computed without params, which comes back in the gradients' dtype)."""
    tx = build()
    state = tx.init(BF16_PARAMS)
    with_params, _ = tx.update(F32_GRADS, state, BF16_PARAMS)
    assert with_params["w"].dtype == jnp.bfloat16
    if not isinstance(tx, gc.GradientTransformation) or tx.name != "lookahead":
        without, _ = tx.update(F32_GRADS, state)
        assert without["w"].dtype == jnp.float32
        chex.assert_trees_all_equal(with_params, jax.tree.map(
            lambda u: u.astype(jnp.bfloat16), without))


def test_float32_params_get_float32_updates_from_bfloat16_gradients():
    params = jax.tree.map(lambda p: p.astype(jnp.float32), BF16_PARAMS)
    grads = jax.tree.map(lambda g: g.astype(jnp.bfloat16), F32_GRADS)
    tx = gc.adam(0.1)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert updates["w"].dtype == jnp.float32


TREE = {"a": {"b": jnp.ones(2), "w": jnp.ones(3)}, "c": jnp.ones(1)}
# (case, gradients, words: the path that is missing or extra)
TREE_MISMATCHES = [
    ("missing-first", {"a": {"w": jnp.ones(3)}, "c": jnp.ones(1)},
     ["a/b is in the optimizer state but not in the updates"]),
    ("missing-middle", {"a": {"b": jnp.ones(2)}, "c": jnp.ones(1)},
     ["a/w is in the optimizer state but not in the updates"]),
    ("missing-last", {"a": {"b": jnp.ones(2), "w": jnp.ones(3)}},
     [": c is in the optimizer state but not in the updates"]),
    ("two-missing", {"c": jnp.ones(1)}, ["a/b (and 1 more) is in the optimizer state"]),
    ("extra", {**TREE, "d": jnp.ones(1)}, [": d is in the updates but not in the optimizer"]),
    ("renamed", {"a": {"bb": jnp.ones(2), "w": jnp.ones(3)}, "c": jnp.ones(1)},
     ["a/b is in the optimizer state but not", "a/bb is in the updates but not"]),
]


@pytest.mark.parametrize("grads, words", [r[1:] for r in TREE_MISMATCHES],
                         ids=[r[0] for r in TREE_MISMATCHES])
def test_tree_mismatch_names_the_missing_and_the_extra_leaf(grads, words):
    tx = gc.adam(0.1)
    _raises(ValueError, words, lambda: tx.update(grads, tx.init(TREE), TREE))


def test_same_paths_in_other_containers_are_reported_as_such():
    params = {"c": [jnp.ones(1)]}
    tx = gc.adam(0.1)
    with pytest.raises(ValueError, match="same paths, different containers") as caught:
        tx.update({"c": (jnp.ones(1),)}, tx.init(params), params)
    assert not re.search(r"is in the (updates|optimizer state) but not", str(caught.value))
