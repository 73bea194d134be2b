"""Bad input is refused early, with a message that says what is wrong and where.

- Out-of-range plain hyperparameters raise ``ValueError`` when the transformation is built,
  naming the function called, the argument (as the user spelled it) and the allowed range;
  boundary values pass.
- Traced values and schedules are not checked, so building under ``jit``/``grad``/``vmap`` works.
- An ``update`` whose tree does not match the state raises ``ValueError`` naming the path.
- Integer leaves raise ``TypeError`` naming the path and dtype; mixed float dtypes are handled.
- Misused combinators (a non-transformation, a missing ``params``) raise clear errors.
"""

import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradchain as gc
from gradchain.clipping.adaptive import adaptive_grad_clip
from gradchain.clipping.block_rms import clip_by_block_rms
from gradchain.clipping.global_norm import clip_by_global_norm
from gradchain.clipping.value import clip
from gradchain.wrappers.accumulate import accumulate_gradients
from gradchain.wrappers.finite import apply_if_finite, skip_non_finite
from registry import CONSTANT, CONSTANT_FAMILIES, ids

# (builder, keyword arguments, argument named in the message, allowed range as printed)
OUT_OF_RANGE = [
    # aliases
    (gc.sgd, dict(learning_rate=-0.1), "learning_rate", "[0, inf)"),
    (gc.sgd, dict(learning_rate=float("nan")), "learning_rate", "[0, inf)"),
    (gc.sgd, dict(learning_rate=np.array(-0.1)), "learning_rate", "[0, inf)"),
    (gc.sgd, dict(learning_rate=0.1, momentum=-0.1), "momentum", "[0, 1]"),
    (gc.sgd, dict(learning_rate=0.1, momentum=1.5), "momentum", "[0, 1]"),
    (gc.sgd, dict(learning_rate=0.1, momentum=0.9, dampening=-0.1), "dampening", "[0, 1]"),
    (gc.sgd, dict(learning_rate=0.1, momentum=0.9, dampening=1.5), "dampening", "[0, 1]"),
    (gc.sgd, dict(learning_rate=0.1, weight_decay=-1e-4), "weight_decay", "[0, inf)"),
    (gc.adagrad, dict(learning_rate=-0.1), "learning_rate", "[0, inf)"),
    (gc.adagrad, dict(learning_rate=0.1, initial_accumulator_value=-0.1),
     "initial_accumulator_value", "[0, inf)"),
    (gc.adagrad, dict(learning_rate=0.1, eps=-1e-7), "eps", "[0, inf)"),
    (gc.adagrad, dict(learning_rate=0.1, eps=-1e-7, eps_in_sqrt=False), "eps", "[0, inf)"),
    (gc.adagrad, dict(learning_rate=0.1, weight_decay=-1e-4), "weight_decay", "[0, inf)"),
    (gc.rmsprop, dict(learning_rate=-0.1), "learning_rate", "[0, inf)"),
    (gc.rmsprop, dict(learning_rate=0.1, decay=-0.1), "decay", "[0, 1]"),
    (gc.rmsprop, dict(learning_rate=0.1, decay=1.5), "decay", "[0, 1]"),
    (gc.rmsprop, dict(learning_rate=0.1, decay=1.0, bias_correction=True), "decay", "[0, 1)"),
    (gc.rmsprop, dict(learning_rate=0.1, eps=-1e-8), "eps", "[0, inf)"),
    (gc.rmsprop, dict(learning_rate=0.1, eps=-1e-8, eps_in_sqrt=False), "eps", "[0, inf)"),
    (gc.rmsprop, dict(learning_rate=0.1, initial_scale=-1.0), "initial_scale", "[0, inf)"),
    (gc.rmsprop, dict(learning_rate=0.1, centered=True, initial_scale=-1.0), "initial_scale",
     "[0, inf)"),
    (gc.rmsprop, dict(learning_rate=0.1, momentum=-0.9), "momentum", "[0, 1]"),
    (gc.rmsprop, dict(learning_rate=0.1, weight_decay=-1e-4), "weight_decay", "[0, inf)"),
    (gc.adadelta, dict(learning_rate=-1.0), "learning_rate", "[0, inf)"),
    (gc.adadelta, dict(rho=1.5), "rho", "[0, 1]"),
    (gc.adadelta, dict(rho=-0.5), "rho", "[0, 1]"),
    (gc.adadelta, dict(eps=-1e-6), "eps", "(0, inf)"),
    (gc.adadelta, dict(weight_decay=-1e-4), "weight_decay", "[0, inf)"),
    *[(alias, kwargs, argument, interval)
      for alias in (gc.adam, gc.adamw, gc.amsgrad)
      for kwargs, argument, interval in [
          (dict(learning_rate=-1e-3), "learning_rate", "[0, inf)"),
          (dict(learning_rate=1e-3, b1=-0.1), "b1", "[0, 1)"),
          (dict(learning_rate=1e-3, b1=1.0), "b1", "[0, 1)"),
          (dict(learning_rate=1e-3, b2=1.0), "b2", "[0, 1)"),
          (dict(learning_rate=1e-3, b2=-0.5), "b2", "[0, 1)"),
          (dict(learning_rate=1e-3, eps=-1e-8), "eps", "[0, inf)"),
          (dict(learning_rate=1e-3, eps_root=-1e-8), "eps_root", "[0, inf)"),
          (dict(learning_rate=1e-3, weight_decay=-1e-4), "weight_decay", "[0, inf)")]],
    (gc.adamw, dict(learning_rate=1e-3, multiplier=-1.0), "multiplier", "[0, inf)"),
    # primitives
    (gc.scale_by_learning_rate, dict(learning_rate=-1.0), "learning_rate", "[0, inf)"),
    (gc.scale_by_learning_rate, dict(learning_rate=-1.0, hyperparam_name="multiplier"),
     "multiplier", "[0, inf)"),
    (gc.scale_by_momentum, dict(momentum=1.1), "momentum", "[0, 1]"),
    (gc.scale_by_momentum, dict(dampening=-0.5), "dampening", "[0, 1]"),
    (gc.ema, dict(decay=1.5), "decay", "[0, 1]"),
    (gc.ema, dict(decay=-0.5, hyperparam_name="b1"), "b1", "[0, 1]"),
    (gc.bias_correction, dict(decay=1.0), "decay", "[0, 1)"),
    (gc.bias_correction, dict(decay=-0.1, hyperparam_name="b2"), "b2", "[0, 1)"),
    (gc.accumulate, dict(initial_value=-0.1), "initial_value", "[0, inf)"),
    (gc.scale_by_delta_rms, dict(rho=1.5), "rho", "[0, 1]"),
    (gc.scale_by_delta_rms, dict(eps=-1.0), "eps", "(0, inf)"),
    (gc.add_decayed_weights, dict(weight_decay=-1e-4), "weight_decay", "[0, inf)"),
    (gc.maybe_add_decayed_weights, dict(weight_decay=-1e-4), "weight_decay", "[0, inf)"),
    (gc.scale_by_rss, dict(initial_accumulator_value=-0.1), "initial_accumulator_value",
     "[0, inf)"),
    (gc.scale_by_rss, dict(eps=-1.0), "eps", "[0, inf)"),
    (gc.scale_by_rms, dict(decay=1.5), "decay", "[0, 1]"),
    (gc.scale_by_rms, dict(eps=-1.0), "eps", "[0, inf)"),
    (gc.scale_by_rms, dict(initial_scale=-1.0), "initial_scale", "[0, inf)"),
    (gc.scale_by_stddev, dict(decay=1.5), "decay", "[0, 1]"),
    (gc.scale_by_stddev, dict(eps=-1.0, eps_in_sqrt=False), "eps", "[0, inf)"),
    (gc.scale_by_stddev, dict(initial_scale=-1.0), "initial_scale", "[0, inf)"),
    (gc.scale_by_adam, dict(b1=1.0), "b1", "[0, 1)"),
    (gc.scale_by_adam, dict(b2=-0.1), "b2", "[0, 1)"),
    (gc.scale_by_adam, dict(eps=-1.0), "eps", "[0, inf)"),
    (gc.scale_by_amsgrad, dict(b2=1.0, max_on_raw=True), "b2", "[0, 1)"),
    (gc.scale_by_adadelta, dict(rho=2.0), "rho", "[0, 1]"),
    (gc.scale_by_adadelta, dict(eps=-1.0), "eps", "(0, inf)"),
    (gc.first_moment, dict(b1=-0.1), "b1", "[0, 1)"),
    (gc.second_moment, dict(b2=1.0), "b2", "[0, 1)"),
    (gc.divide_by_sqrt, dict(numerator=gc.identity(), denominator=gc.identity(), eps=-1.0),
     "eps", "[0, inf)"),
    (gc.divide_by_sqrt, dict(numerator=gc.identity(), denominator=gc.identity(),
                             eps_root=-1.0), "eps_root", "[0, inf)"),
    (clip, dict(max_delta=-1.0), "max_delta", "[0, inf]"),
    (clip_by_global_norm, dict(max_norm=0.0), "max_norm", "(0, inf]"),
    (clip_by_block_rms, dict(threshold=-1.0), "threshold", "(0, inf]"),
    (adaptive_grad_clip, dict(clipping=0.0), "clipping", "(0, inf]"),
    (adaptive_grad_clip, dict(clipping=0.1, eps=-1e-3), "eps", "[0, inf)"),
    (accumulate_gradients, dict(inner=gc.sgd(0.1), k=0), "k", "[1, inf)"),
    (skip_non_finite, dict(inner=gc.sgd(0.1), give_up_after=-1), "give_up_after", "[0, inf)"),
    (apply_if_finite, dict(inner=gc.sgd(0.1), max_consecutive_errors=-1),
     "max_consecutive_errors", "[0, inf)"),
]

# Values on the boundary of each range (and a few inside it) must build.
IN_RANGE = [
    (gc.sgd, dict(learning_rate=0.0, momentum=0.0)),
    (gc.sgd, dict(learning_rate=0.1, momentum=1.0, dampening=1.0)),
    (gc.sgd, dict(learning_rate=0.1, momentum=0.9, nesterov=True, dampening=np.float32(0.0))),
    (gc.sgd, dict(learning_rate=0.1, momentum=0.9, nesterov=True, dampening=jnp.asarray(0.0))),
    (gc.adagrad, dict(learning_rate=0.1, initial_accumulator_value=0.0, eps=0.0)),
    (gc.rmsprop, dict(learning_rate=0.1, decay=0.0, eps=0.0, momentum=1.0)),
    (gc.rmsprop, dict(learning_rate=0.1, decay=1.0)),
    (gc.adadelta, dict(rho=0.0, eps=1e-30)),
    (gc.adadelta, dict(rho=1.0)),
    (gc.adam, dict(learning_rate=0.0, b1=0.0, b2=0.0, eps=0.0, eps_root=0.0)),
    (gc.adamw, dict(learning_rate=0.1, weight_decay=0.0, multiplier=0.0)),
    (gc.amsgrad, dict(learning_rate=0.1, b1=0.0, b2=0.0)),
    (gc.ema, dict(decay=1.0)),
    (gc.scale, dict(step_size=-3.0)),
]


def _id(row):
    builder, kwargs = row[0], row[1]
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()
                      if not isinstance(v, gc.GradientTransformation))
    return f"{builder.__name__}({shown})"


@pytest.mark.parametrize("builder, kwargs, argument, interval", OUT_OF_RANGE,
                         ids=[_id(r) for r in OUT_OF_RANGE])
def test_out_of_range_hyperparameter_raises_naming_argument_and_range(builder, kwargs,
                                                                      argument, interval):
    expected = (rf"^{builder.__name__}: {argument}=.* is out of range; "
                rf"expected {argument} in {re.escape(interval)}$")
    with pytest.raises(ValueError, match=expected):
        builder(**kwargs)


@pytest.mark.parametrize("builder, kwargs", IN_RANGE, ids=[_id(r) for r in IN_RANGE])
def test_boundary_values_build(builder, kwargs):
    tx = builder(**kwargs)
    params = {"w": jnp.ones(2)}
    updates, _ = tx.update(params, tx.init(params), params)
    assert jax.tree.structure(updates) == jax.tree.structure(params)


@pytest.mark.parametrize("kwargs, message", [
    (dict(momentum=0.9, nesterov=True, dampening=0.1), "nesterov=True needs dampening=0"),
    (dict(momentum=0.9, nesterov=True, dampening=jnp.asarray(0.1)),
     "nesterov=True needs dampening=0"),
    (dict(nesterov=True), "nesterov=True needs a momentum"),
    (dict(dampening=0.5), "dampening=0.5 needs a momentum"),
])
def test_sgd_rejects_contradictory_momentum_options(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        gc.sgd(0.1, **kwargs)


def test_rmsprop_rejects_nesterov_without_momentum():
    with pytest.raises(ValueError, match="nesterov=True needs a momentum"):
        gc.rmsprop(0.1, nesterov=True)


def test_plain_zero_weight_decay_is_left_out_but_an_array_zero_is_kept():
    """A plain 0 costs nothing (no stage); an array, even 0, is a stage whose value can be
    changed in the state at run time (as ``maybe_add_decayed_weights`` documents)."""
    assert gc.maybe_add_decayed_weights(0.0).name == "identity"
    assert gc.maybe_add_decayed_weights(0).name == "identity"
    tx = gc.sgd(1.0, weight_decay=jnp.asarray(0.0))
    state = tx.init(PARAMS)
    (decay_state, *_) = state
    state = (decay_state._replace(hyperparams={"weight_decay": jnp.asarray(0.5)}), *state[1:])
    zeros = jax.tree.map(jnp.zeros_like, PARAMS)
    updates, _ = tx.update(zeros, state, PARAMS)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda p: -0.5 * p, PARAMS))


def test_non_number_hyperparameter_raises_type_error():
    with pytest.raises(TypeError, match="learning_rate must be a real number, a 0-d array, a "
                                        "traced value or a schedule"):
        gc.sgd("0.1")


@pytest.mark.parametrize("build", [
    lambda: gc.adam(0.1, mu_dtype=jnp.int32),
    lambda: gc.adam(0.1, nu_dtype=jnp.int8),
    lambda: gc.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.int32),
    lambda: gc.adagrad(0.1, accumulator_dtype=jnp.uint8),
    lambda: gc.square(dtype=jnp.int32),
], ids=["adam-mu_dtype", "adam-nu_dtype", "sgd-accumulator_dtype", "adagrad-accumulator_dtype",
        "square-dtype"])
def test_non_floating_state_dtype_raises_at_construction(build):
    with pytest.raises(TypeError, match=r"dtype=u?int\d+ is not a floating-point dtype"):
        build()


# Every numeric hyperparameter of each alias, so all of them can be given traced.
TRACEABLE = [
    (gc.sgd, dict(learning_rate=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    (gc.sgd, dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    (gc.adagrad, dict(learning_rate=0.1, initial_accumulator_value=0.1, eps=1e-7,
                      weight_decay=1e-3)),
    (gc.rmsprop, dict(learning_rate=0.1, decay=0.9, eps=1e-8, initial_scale=0.0,
                      momentum=0.9, weight_decay=1e-3)),
    (gc.rmsprop, dict(learning_rate=0.1, decay=0.9, eps=1e-8, centered=True,
                      bias_correction=True)),
    (gc.adadelta, dict(learning_rate=1.0, rho=0.9, eps=1e-6, weight_decay=1e-3)),
    (gc.adam, dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8, eps_root=1e-9,
                   weight_decay=1e-3)),
    (gc.adamw, dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-3,
                    multiplier=0.5)),
    (gc.amsgrad, dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-3)),
]


def _numeric(kwargs):
    return {k: v for k, v in kwargs.items() if not isinstance(v, bool)}


PARAMS = {"w": jnp.linspace(-1.0, 1.0, 3), "b": jnp.array(0.5)}


def _one_step_loss(builder, kwargs, hyper):
    tx = builder(**{**kwargs, **hyper})
    updates, _ = tx.update(PARAMS, tx.init(PARAMS), PARAMS)
    return sum(jnp.sum(jnp.square(p + u)) for p, u in zip(jax.tree.leaves(PARAMS),
                                                            jax.tree.leaves(updates)))


@pytest.mark.parametrize("builder, kwargs", TRACEABLE, ids=[_id(r) for r in TRACEABLE])
def test_traced_hyperparameters_pass_under_jit_grad_vmap(builder, kwargs):
    """Built under ``jit``, ``grad`` and ``vmap`` with every hyperparameter traced, including
    out-of-range values (a tracer has no value to check). Traced only (``eval_shape``): the
    numbers of traced hyperparameters are the contract tests' business."""
    hyper = _numeric(kwargs)
    loss = functools.partial(_one_step_loss, builder, kwargs)
    batched = {k: jnp.stack([jnp.asarray(v, float), -jnp.ones((), float)])
               for k, v in hyper.items()}
    shapes = jax.eval_shape(jax.jit(jax.vmap(jax.grad(loss))), batched)
    chex.assert_trees_all_equal_shapes(shapes, batched)


INITIAL_VALUES = ("initial_accumulator_value", "initial_scale")


@pytest.mark.parametrize("builder, kwargs", TRACEABLE, ids=[_id(r) for r in TRACEABLE])
def test_schedules_pass(builder, kwargs):
    """A schedule is not checked at construction, even one that would leave the range.
    (Initial values of the state are used once, at init: they are no schedules.)"""
    hyper = {k: (lambda v: lambda count: v * (1.0 - 2.0 * count))(v)
             for k, v in _numeric(kwargs).items() if k not in INITIAL_VALUES}
    tx = builder(**{**kwargs, **hyper})
    updates, _ = tx.update(PARAMS, tx.init(PARAMS), PARAMS)
    chex.assert_tree_all_finite(updates)


@pytest.mark.parametrize("builder, argument", [
    (lambda s: gc.adagrad(0.1, initial_accumulator_value=s), "initial_accumulator_value"),
    (lambda s: gc.rmsprop(0.1, initial_scale=s), "initial_scale"),
    (lambda s: gc.scale_by_stddev(initial_scale=s), "initial_scale"),
    (lambda s: gc.ema(0.9, initial_value=s), "initial_value"),
    (lambda s: gc.accumulate(initial_value=s), "initial_value"),
], ids=["adagrad", "rmsprop", "scale_by_stddev", "ema", "accumulate"])
def test_initial_value_schedule_raises_at_construction(builder, argument):
    with pytest.raises(TypeError, match=f"{argument} is the state's starting value"):
        builder(lambda count: 0.1)


TREE_PARAMS = {"a": {"b": jnp.ones(2), "w": jnp.ones(3)}, "c": jnp.ones(1)}
# (what is wrong, gradients, a tree path the message must name)
MISMATCHES = [
    ("missing-leaf", {"a": {"w": jnp.ones(3)}, "c": jnp.ones(1)}, "a/b"),
    ("extra-leaf", {**TREE_PARAMS, "d": jnp.ones(1)}, "d"),
    ("renamed-key", {"a": {"bb": jnp.ones(2), "w": jnp.ones(3)}, "c": jnp.ones(1)}, "a/bb"),
    ("deeper-nesting", {"a": {"b": {"x": jnp.ones(2)}, "w": jnp.ones(3)}, "c": jnp.ones(1)},
     "a/b/x"),
    ("list-for-dict", {"a": [jnp.ones(2), jnp.ones(3)], "c": jnp.ones(1)}, "a/0"),
]


def _raises_in_update_or_apply(tx, grads, message):
    """An optimizer with per-leaf state refuses ``grads`` in ``update``; one without (plain SGD)
    may have nothing to compare them with, and then ``apply_updates`` refuses its updates."""
    state = tx.init(TREE_PARAMS)
    with pytest.raises(ValueError, match=message):
        if any(jnp.ndim(leaf) > 0 for leaf in jax.tree.leaves(state)):
            tx.update(grads, state, TREE_PARAMS)
        else:
            gc.apply_updates(TREE_PARAMS, tx.update(grads, state, TREE_PARAMS)[0])


@pytest.mark.parametrize("config", CONSTANT, ids=ids(CONSTANT))
@pytest.mark.parametrize("what, grads, path", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_tree_mismatch_names_first_mismatching_path(config, what, grads, path):
    _raises_in_update_or_apply(config.gradchain(), grads,
                               rf"(: |; ){re.escape(path)} (\(and \d+ more\) )?is in the")


SHAPE_CHECKED = [c for c in CONSTANT if not c.groups_by_shape]


@pytest.mark.parametrize("config", SHAPE_CHECKED, ids=ids(SHAPE_CHECKED))
def test_leaf_shape_mismatch_names_path_and_shapes(config):
    """Same tree, one leaf of another shape: refused, not broadcast into the state or params."""
    grads = {**TREE_PARAMS, "a": {"b": jnp.ones((4, 2)), "w": jnp.ones(3)}}
    _raises_in_update_or_apply(config.gradchain(), grads,
                               re.escape("a/b has shape (4, 2)") + r".*\(2,\)")


def test_apply_updates_refuses_other_shapes_and_skips_none_updates():
    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    with pytest.raises(ValueError, match=re.escape("leaf at b has shape (2, 3)") + r".*\(3,\)"):
        gc.apply_updates(params, {"a": jnp.ones(2), "b": jnp.ones((2, 3))})
    new = gc.apply_updates(params, {"a": None, "b": jnp.full(3, 0.5)})
    chex.assert_trees_all_equal(new, {"a": jnp.ones(2), "b": jnp.full(3, 1.5)})


INT_PARAMS = {"a": {"b": jnp.ones(2), "steps": jnp.arange(3)}, "c": jnp.ones(1)}


@pytest.mark.parametrize("config", CONSTANT, ids=ids(CONSTANT))
def test_integer_params_raise_at_init(config):
    with pytest.raises(TypeError, match=re.escape("params leaf at a/steps has dtype "
                                                  "int64")):
        config.gradchain().init(INT_PARAMS)


@pytest.mark.parametrize("config", CONSTANT, ids=ids(CONSTANT))
def test_integer_gradients_raise_at_update(config):
    tx = config.gradchain()
    state = tx.init(TREE_PARAMS)
    grads = {**TREE_PARAMS, "a": {"b": jnp.ones(2), "w": jnp.ones(3, jnp.int32)}}
    with pytest.raises(TypeError, match=re.escape("updates leaf at a/w has dtype int32")):
        tx.update(grads, state, TREE_PARAMS)


@pytest.mark.parametrize("config", CONSTANT_FAMILIES, ids=ids(CONSTANT_FAMILIES))
@pytest.mark.parametrize("param_dtype, grad_dtype",
                         [(jnp.bfloat16, jnp.float32), (jnp.float32, jnp.float64)],
                         ids=["bf16-params-f32-grads", "f32-params-f64-grads"])
def test_mixed_dtypes(config, param_dtype, grad_dtype):
    """Updates come back in the params' dtype, whatever the gradients' dtype; ``apply_updates``
    keeps it; the numbers are those of the all-``param_dtype`` run to the params' precision."""
    params = {"w": jnp.linspace(-1.0, 1.0, 4, dtype=param_dtype)}
    grads = {"w": jnp.array([0.3, -0.2, 0.05, 1.0], grad_dtype)}
    tx = config.gradchain()
    state, same_state = tx.init(params), tx.init(params)
    for _ in range(3):
        updates, state = tx.update(grads, state, params)
        same, same_state = tx.update(jax.tree.map(lambda g: g.astype(param_dtype), grads),
                                     same_state, params)
        assert updates["w"].dtype == param_dtype
        new_params = gc.apply_updates(params, updates)
        assert new_params["w"].dtype == param_dtype
        np.testing.assert_allclose(np.asarray(updates["w"], np.float64),
                                   np.asarray(same["w"], np.float64),
                                   rtol=float(jnp.finfo(param_dtype).eps) * 4, atol=1e-30)


def test_weight_decay_without_params_raises():
    for tx in (gc.add_decayed_weights(1e-4), gc.adamw(0.1), gc.sgd(0.1, weight_decay=1e-4)):
        state = tx.init(PARAMS)
        with pytest.raises(ValueError, match=r"add_decayed_weights: update needs params"):
            tx.update(PARAMS, state)


@pytest.mark.parametrize("parts, index", [
    ((gc.identity(), gc.adam), 1),
    ((0.1, gc.identity()), 0),
    ((gc.identity(), gc.identity(), "adam"), 2),
])
def test_chain_rejects_non_transformation_naming_its_index(parts, index):
    with pytest.raises(TypeError, match=rf"chain: transformations\[{index}\] is .*not a "
                                        "gradient transformation"):
        gc.chain(*parts)


def test_divide_by_sqrt_rejects_non_transformation_naming_its_index():
    with pytest.raises(TypeError, match=r"divide_by_sqrt: numerator is .*not a gradient "
                                        "transformation"):
        gc.divide_by_sqrt(gc.identity, gc.second_moment())
