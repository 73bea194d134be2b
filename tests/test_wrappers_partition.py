"""Parameter groups: Optax's numbers, state only for owned leaves, labels by path or by a prefix
tree matched by key (plain dicts on ``nnx.State``), clear errors that change no state, Flax's
``TrainState`` and ``nnx.Optimizer``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.training import train_state

import gradchain as gc
from gradchain.introspection.find import find_state
from gradchain.wrappers.labels import MaskedNode
from gradchain.wrappers.partition import multi_transform, param_groups, partition

STEPS = 4


def make_params(dtype):
    rng = np.random.default_rng(0)
    shapes = {"backbone": {"kernel": (3, 4), "bias": (4,), "norm": {"scale": (4,)}},
              "head": {"kernel": (4, 2), "bias": (2,)}}
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s), dtype), shapes,
                        is_leaf=lambda s: isinstance(s, tuple))


def make_grads(params, steps=STEPS):
    rng = np.random.default_rng(1)
    return jax.tree.map(lambda p: jnp.asarray(rng.normal(size=(steps,) + p.shape), p.dtype),
                        params)


def decay_label(path, leaf):
    return "decay" if path[-1] == "kernel" else "no_decay"


def optax_labels(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: decay_label(tuple(k.key for k in path), leaf), params)


def run(tx_pair, params, grads):
    """Open loop: ``STEPS`` updates of both transformations on the same recorded gradients,
    compiled as one program."""
    def trajectory(tx, params, grads):
        def step(carry, g):
            p, s = carry
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None
        return jax.lax.scan(step, (params, tx.init(params)), grads)[0][0]
    return jax.jit(lambda p, g: [trajectory(tx, p, g) for tx in tx_pair])(params, grads)


def per_leaf_bytes(state):
    """Bytes of the state's per-leaf statistics (its arrays that are not scalars)."""
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state) if x.ndim > 0)


def test_weight_decay_on_kernels_only_matches_optax_partition():
    groups = {"decay": gc.adamw(0.05, weight_decay=0.1), "no_decay": gc.adam(0.05)}
    reference = {"decay": optax.adamw(0.05, weight_decay=0.1), "no_decay": optax.adam(0.05)}
    for dtype, tolerance in ((jnp.float64, 1e-13), (jnp.float32, 1e-6)):
        params = make_params(dtype)
        ours, theirs = run((param_groups(groups, decay_label),
                                        optax.partition(reference, optax_labels)),
                                       params, make_grads(params))
        chex.assert_trees_all_close(ours, theirs, rtol=tolerance, atol=tolerance)
        assert not np.allclose(ours["head"]["kernel"], params["head"]["kernel"])


def test_backbone_and_head_learning_rates_from_a_prefix_tree():
    params = make_params(jnp.float64)
    grads = make_grads(params)
    labels = {"backbone": "slow", "head": "fast"}
    ours, theirs = run((
        partition({"slow": gc.sgd(1e-3, momentum=0.9), "fast": gc.sgd(1e-1, momentum=0.9)},
                  labels),
        optax.partition({"slow": optax.sgd(1e-3, momentum=0.9),
                         "fast": optax.sgd(1e-1, momentum=0.9)}, labels)), params, grads)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-13, atol=0)
    assert multi_transform is partition


def test_each_group_keeps_state_for_its_own_leaves_only():
    params = make_params(jnp.float32)
    tx = param_groups({"decay": gc.adamw(0.1), "no_decay": gc.adam(0.1)}, decay_label)
    state = tx.init(params)
    for label, group_state in state.inner_states.items():
        first_moment = find_state(group_state, "ema", hyperparam="b1")
        owned = {"/".join(k.key for k in path) for path, _ in
                 jax.tree_util.tree_flatten_with_path(first_moment)[0]}
        expected = {"/".join(k.key for k in path) for path, leaf in
                    jax.tree_util.tree_flatten_with_path(params)[0]
                    if decay_label(tuple(k.key for k in path), leaf) == label}
        assert owned == expected
    # Adam keeps two float32 moments per parameter: the groups together hold exactly that.
    assert per_leaf_bytes(state) == sum(2 * 4 * x.size for x in jax.tree.leaves(params))


def test_optax_transformations_as_groups():
    params = make_params(jnp.float64)
    grads = jax.tree.map(lambda g: g[0], make_grads(params))
    tx = param_groups({"decay": optax.adamw(0.1, weight_decay=0.1), "no_decay": gc.adam(0.1)},
                      decay_label)
    ref = optax.partition({"decay": optax.adamw(0.1, weight_decay=0.1),
                           "no_decay": optax.adam(0.1)}, optax_labels)
    ours, theirs = jax.jit(lambda g, p: [t.update(g, t.init(p), p)[0] for t in (tx, ref)])(
        grads, params)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-13, atol=0)


def test_label_tree_not_matching_the_params_names_the_path():
    params = make_params(jnp.float64)
    with pytest.raises(ValueError, match=r"no entry 'head' at <root> \(params leaf head/bias\); "
                                         r"its keys there are \['backbone', 'haed'\]"):
        partition({"a": gc.sgd(0.1)}, {"backbone": "a", "haed": "a"}).init(params)
    with pytest.raises(ValueError, match=r"goes deeper than the params leaf head/bias"):
        partition({"a": gc.sgd(0.1)},
                  {"backbone": "a", "head": {"kernel": "a", "bias": {"x": "a"}}}).init(params)
    with pytest.raises(ValueError, match=r"entry at extra matches no params leaf"):
        partition({"a": gc.sgd(0.1)},
                  {"backbone": "a", "head": "a", "extra": "a"}).init(params)


def test_label_with_no_transformation_names_the_label_and_a_leaf():
    params = make_params(jnp.float64)
    tx = param_groups({"decay": gc.sgd(0.1)}, decay_label)
    with pytest.raises(ValueError, match=r"label 'no_decay' \(of params leaf backbone/bias\) has "
                                         r"no transformation; the transformations are labelled "
                                         r"'decay'$"):
        tx.init(params)


def test_failed_update_changes_no_state():
    params = make_params(jnp.float64)
    grads = jax.tree.map(lambda g: g[0], make_grads(params))
    tx = param_groups({"slow": gc.adam(1e-3), "fast": gc.adam(1e-1)},
                      {"backbone": "slow", "head": "fast"})
    state = tx.init(params)
    _, state = tx.update(grads, state, params)
    snapshot = jax.tree.map(np.array, state)
    bad = {"backbone": grads["backbone"], "head": grads["head"], "extra": grads["head"]["bias"]}
    with pytest.raises(ValueError, match="extra"):
        tx.update(bad, state, params)
    chex.assert_trees_all_equal(state, snapshot)
    chex.assert_trees_all_equal(tx.update(grads, state, params),
                                tx.update(grads, snapshot, params))


class Model(nnx.Module):
    def __init__(self, rngs):
        self.backbone = nnx.Linear(3, 4, rngs=rngs)
        self.head = nnx.Linear(4, 2, rngs=rngs)

    def __call__(self, x):
        return self.head(jnp.tanh(self.backbone(x)))


X = jnp.linspace(-1.0, 1.0, 15, dtype=jnp.float32).reshape(5, 3)
Y = jnp.ones((5, 2), jnp.float32)


def model_loss(model):
    return jnp.mean((model(X) - Y) ** 2)


def pure_loss(p):
    hidden = jnp.tanh(X @ p["backbone"]["kernel"] + p["backbone"]["bias"])
    return jnp.mean((hidden @ p["head"]["kernel"] + p["head"]["bias"] - Y) ** 2)


@nnx.jit
def nnx_step(model, optimizer):
    optimizer.update(model, nnx.grad(model_loss)(model))


def test_nnx_optimizer_with_a_plain_dict_of_labels():
    """A plain dict of labels fits ``nnx.State``; the run equals the same groups on the pure
    arrays; a failed update leaves the model and the optimizer state untouched."""
    make_tx = lambda: param_groups({"slow": gc.adam(1e-3), "fast": gc.sgd(0.1)},  # noqa: E731
                                   {"backbone": "slow", "head": "fast"})
    model = Model(nnx.Rngs(0))
    start = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    optimizer = nnx.Optimizer(model, make_tx(), wrt=nnx.Param)
    # Adam's two float32 moments of the backbone's kernel and bias; nothing for the head.
    assert per_leaf_bytes(nnx.as_pure(optimizer.opt_state)) == 2 * 4 * (3 * 4 + 4)
    for _ in range(3):
        nnx_step(model, optimizer)

    tx = make_tx()
    params, state, update = start, tx.init(start), jax.jit(tx.update)
    for _ in range(3):
        updates, state = update(jax.grad(pure_loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    chex.assert_trees_all_close(nnx.to_pure_dict(nnx.state(model, nnx.Param)), params,
                                rtol=1e-6, atol=1e-7)

    before = jax.tree.map(np.array, (nnx.to_pure_dict(nnx.state(model, nnx.Param)),
                                     nnx.as_pure(optimizer.opt_state)))
    grads = nnx.jit(nnx.grad(model_loss))(model)
    del grads["head"]
    with pytest.raises(ValueError, match="head"):
        optimizer.update(model, grads)
    chex.assert_trees_all_equal((nnx.to_pure_dict(nnx.state(model, nnx.Param)),
                                 nnx.as_pure(optimizer.opt_state)), before)


def test_flax_train_state():
    params = make_params(jnp.float32)
    grads = jax.tree.map(lambda g: g[0], make_grads(params))
    tx = param_groups({"decay": gc.adamw(0.1), "no_decay": gc.adam(0.1)}, decay_label)
    ts = train_state.TrainState.create(apply_fn=None, params=params, tx=tx)
    ts = jax.jit(lambda ts, g: ts.apply_gradients(grads=g))(ts, grads)
    updates, _ = tx.update(grads, tx.init(params), params)
    chex.assert_trees_all_close(ts.params, optax.apply_updates(params, updates), rtol=1e-6)
    first_moment = find_state(ts.opt_state, "ema", hyperparam="b1", within="decay")
    assert isinstance(first_moment["head"]["bias"], MaskedNode)


def test_description_shows_the_groups():
    text = repr(param_groups({"decay": gc.sgd(0.1), "no_decay": gc.scale(-1.0)}, decay_label))
    assert text.splitlines()[0] == "param_groups(labels=<function decay_label>)"
    assert "  ['decay'] chain()" in text and "  ['no_decay'] scale(step_size=-1.0)" in text
