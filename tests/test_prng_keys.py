"""The ``key`` of ``noisy_sgd`` and ``add_gradient_noise``: every accepted form gives the key
``jax.random.key(seed)`` gives, also traced (``vmap`` over seeds, ``optax.inject_hyperparams``);
anything else is refused when the transformation is built, naming the function and ``key``."""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradchain as gc

PARAMS = {"w": jnp.ones(3), "b": jnp.ones(2)}
SEED = 7
REFERENCE = np.asarray(jax.random.key_data(jax.random.key(SEED)))


def state_key(tx):
    """The key data in ``tx``'s state, wherever the noise stage sits."""
    return gc.find_state(tx.init(PARAMS), "key")


@pytest.mark.parametrize("key", [
    SEED, np.int64(SEED), np.uint32(SEED), jnp.asarray(SEED), jnp.asarray(SEED, jnp.int32),
    jnp.asarray(SEED, jnp.uint32), jax.random.key(SEED), jax.random.PRNGKey(SEED),
    np.asarray(jax.random.PRNGKey(SEED)),
], ids=lambda k: f"{type(k).__name__}-{getattr(k, 'dtype', '')}")
@pytest.mark.parametrize("factory", [gc.noisy_sgd, gc.add_gradient_noise])
def test_seeds_typed_and_legacy_keys_give_the_same_key(factory, key):
    tx = factory(0.1, key=key) if factory is gc.noisy_sgd else factory(0.3, key=key)
    np.testing.assert_array_equal(state_key(tx), REFERENCE)


def test_a_typed_key_of_another_implementation_keeps_it():
    key = jax.random.key(SEED, impl="rbg")
    tx = gc.add_gradient_noise(0.3, key=key)
    state = tx.init(PARAMS)
    np.testing.assert_array_equal(state.key, jax.random.key_data(key))
    noisy, state = tx.update(jax.tree.map(jnp.zeros_like, PARAMS), state)
    assert state.key.shape == jax.random.key_data(key).shape
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(noisy))


def test_vmap_over_seeds_equals_one_run_per_seed():
    """Seeds as traced int32 scalars (what ``vmap`` over ``jnp.arange`` gives)."""
    seeds = jnp.arange(3, dtype=jnp.int32)
    grads = jax.tree.map(jnp.zeros_like, PARAMS)

    def first_update(seed):
        tx = gc.noisy_sgd(0.1, eta=0.3, key=seed)
        return tx.update(grads, tx.init(PARAMS), PARAMS)[0]

    batched = jax.vmap(first_update)(seeds)
    for i in range(3):
        chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], batched),
                                    first_update(i), rtol=1e-15)
    assert not np.allclose(batched["w"][0], batched["w"][1])


def test_optax_inject_hyperparams_with_an_integer_seed():
    """``inject_hyperparams`` turns ``key=0`` into a JAX scalar and rebuilds the optimizer
    from it at each update; the updates are those of ``noisy_sgd(..., key=0)``."""
    injected = optax.inject_hyperparams(gc.noisy_sgd)(learning_rate=0.1, eta=0.3, key=0)
    plain = gc.noisy_sgd(0.1, eta=0.3, key=0)
    grads = jax.tree.map(lambda p: 0.5 * p, PARAMS)
    states = injected.init(PARAMS), plain.init(PARAMS)
    for _ in range(3):
        (u_injected, s_injected), (u_plain, s_plain) = (
            injected.update(grads, states[0], PARAMS), plain.update(grads, states[1], PARAMS))
        chex.assert_trees_all_close(u_injected, u_plain, rtol=1e-15)
        states = s_injected, s_plain


MAX_SEED = int(jnp.iinfo(jnp.result_type(int)).max)
EXPECTED = re.escape("expected an integer seed, a jax.random.key(...) or a "
                     "jax.random.PRNGKey(...) (uint32 data of shape (2,))")
BAD_KEYS = {
    "string": ("abc", TypeError, rf"key='abc' is not a PRNG key; {EXPECTED}"),
    "float": (1.5, TypeError, rf"key=1\.5 is not a PRNG key; {EXPECTED}"),
    "bool": (True, TypeError, r"key=True is not a PRNG key"),
    "list": ([0, 1], TypeError, r"key=\[0, 1\] is not a PRNG key"),
    "float-array": (jnp.asarray(1.0), TypeError,
                    rf"key is an array of dtype float\d+ and shape \(\), not a PRNG key; "
                    rf"{EXPECTED}"),
    "int32-pair": (jnp.zeros(2, jnp.int32), TypeError,
                   r"key is an array of dtype int32 and shape \(2,\)"),
    "uint32-triple": (jnp.zeros(3, jnp.uint32), TypeError,
                      r"key is an array of dtype uint32 and shape \(3,\)"),
    "legacy-batch": (jnp.zeros((4, 2), jnp.uint32), TypeError,
                     r"key is an array of dtype uint32 and shape \(4, 2\)"),
    "typed-batch": (jax.random.split(jax.random.key(0), 2), ValueError,
                    r"key has shape \(2,\); expected a single key \(shape \(\)\), batch "
                    "runs over keys with vmap"),
    "seed-too-big": (MAX_SEED + 1, ValueError, rf"key={MAX_SEED + 1} is out of range; expected "
                                               rf"an integer seed in \[-{MAX_SEED + 1}, "
                                               rf"{MAX_SEED}\]"),
    "none": (None, ValueError, r"key is required"),
}


@pytest.mark.parametrize("key, error, message", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
@pytest.mark.parametrize("name", ["noisy_sgd", "add_gradient_noise"])
def test_bad_keys_are_refused_naming_the_function_and_key(name, key, error, message):
    with pytest.raises(error, match=rf"^{name}: {message}") as caught:
        getattr(gc, name)(0.1, key=key)
    assert type(caught.value) is error


def test_a_traced_float_seed_is_refused_under_vmap():
    with pytest.raises(TypeError, match=r"^noisy_sgd: key is an array of dtype float"):
        jax.vmap(lambda seed: gc.noisy_sgd(0.1, key=seed).init(PARAMS))(jnp.ones(2))
