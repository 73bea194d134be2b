"""Annealed Gaussian gradient noise, with its PRNG key in the state."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradchain.core.hyperparams import state_names
from gradchain.core.public import called_name, public
from gradchain.core.validation import check_choice, check_range
from gradchain.kit.rules import elementwise
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation

NAME = "add_gradient_noise"
FORMS = ("variance", "std")
NO_COMPLEX_NOISE = ("Gaussian noise on complex gradients has no reference convention (variance "
                    "per component or of the modulus; Optax's noisy_sgd does not support "
                    "complex params either)")


class GradientNoiseState(NamedTuple):
    count: jax.Array
    key: jax.Array
    hyperparams: dict


def check_key(owner: str, key):
    """The ``key`` argument as ``(raw uint32 key data, implementation)``, or an error naming
    ``owner`` and ``key``.

    Accepted: an integer seed (a Python or NumPy integer in the range of JAX's integer dtype,
    or an integer scalar array, traced too: ``vmap`` over seeds, ``optax.inject_hyperparams``),
    a typed key ``jax.random.key(...)``, or a legacy raw key ``jax.random.PRNGKey(...)``
    (``uint32`` data of the default implementation's shape, ``(2,)`` for threefry; its
    implementation is returned as ``None``: the default one).
    """
    raw_shape = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0))).shape
    expected = ("expected an integer seed, a jax.random.key(...) or a jax.random.PRNGKey(...) "
                f"(uint32 data of shape {raw_shape})")
    if key is None:
        raise ValueError(f"{owner}: key is required (an int seed or a jax.random key), so that "
                         "the noise is reproducible")
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(f"{owner}: key={key!r} is not a PRNG key; {expected}")
    if isinstance(key, (int, np.integer)):
        limits = jnp.iinfo(jnp.result_type(int))
        if not limits.min <= int(key) <= limits.max:
            raise ValueError(f"{owner}: key={key!r} is out of range; expected an integer seed in "
                             f"[{limits.min}, {limits.max}] (JAX's {limits.dtype} seeds)")
        key = jax.random.key(int(key))
    if not isinstance(key, (jax.Array, np.ndarray)):
        raise TypeError(f"{owner}: key={key!r} is not a PRNG key; {expected}")
    shape, dtype = jnp.shape(key), key.dtype
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if shape != ():
            raise ValueError(f"{owner}: key has shape {shape}; expected a single key (shape ()), "
                             "batch runs over keys with vmap")
        return jax.random.key_data(key), jax.random.key_impl(key)
    if jnp.issubdtype(dtype, jnp.integer) and shape == ():
        key = jax.random.key(key)
        return jax.random.key_data(key), jax.random.key_impl(key)
    if dtype == jnp.uint32 and shape == raw_shape:
        return jnp.asarray(key), None
    raise TypeError(f"{owner}: key is an array of dtype {dtype} and shape {shape}, not a PRNG "
                    f"key; {expected}")


@public
def add_gradient_noise(eta: ScalarOrSchedule = 0.01, gamma: ScalarOrSchedule = 0.55, key=None, *,
                       form: str = "variance", hyperparam_name=None) -> GradientTransformation:
    """``g -> g + σ_t · N(0, 1)`` per entry, with σ_t annealed over the steps ``t = 0, 1, ...``.

    - ``form="variance"`` (Neelakantan et al. 2015, Optax's ``add_noise``):
      ``σ_t² = η / (1 + t)^γ``, η ∈ {0.01, 0.3, 1.0} and γ = 0.55 in the paper;
    - ``form="std"`` (the lecture notes): ``σ_t = η / (1 + t)^γ`` (the notes' ``c``).

    Optax once multiplied the noise by the variance instead of σ_t (its issue #281); here the
    tests check the empirical standard deviation at every step.

    The key lives in the state as raw ``uint32`` key data (a plain array that checkpoints like
    any other), so a run is reproduced exactly from the same key, and runs batched with ``vmap``
    over keys draw independent noise. Each update splits the key as Optax does (one subkey per
    step, split into one key per leaf), so ``chain(add_gradient_noise(η, γ, key),
    scale_by_learning_rate(lr))`` gives Optax's ``noisy_sgd`` numbers for the same key.

    Real params only: complex ones are refused (``NO_COMPLEX_NOISE``).

    Args:
      eta: η ``>= 0``: the initial variance (``"variance"``) or standard deviation (``"std"``).
      gamma: γ ``>= 0``, the annealing exponent.
      key: an integer seed, a ``jax.random.key`` or a raw ``jax.random.PRNGKey``; required
        (see ``check_key``).
      form: ``"variance"`` or ``"std"``: what η and the annealing apply to.
      hyperparam_name: ``{argument: key}`` for the state's ``hyperparams`` (``state_names``).

    Returns:
      A ``GradientTransformation`` whose state is ``GradientNoiseState``: ``count`` (the ``t`` of σ_t), ``key`` (the raw key data) and ``hyperparams`` (its hyperparameters, see ``get_hyperparams``).
    """
    names = state_names(NAME, hyperparam_name, ("eta", "gamma"))
    check_range(NAME, names["eta"], eta, 0)
    check_range(NAME, names["gamma"], gamma, 0)
    check_choice(NAME, "form", form, FORMS)
    data, impl = check_key(called_name(NAME), key)
    wrap = {} if impl is None else {"impl": impl}

    def keys(key, num_leaves, eta, gamma, step):
        # Optax's order: one subkey per update, split into one key per leaf.
        key, sample = jax.random.split(jax.random.wrap_key_data(key, **wrap))
        annealed = eta / step.astype(eta.dtype) ** gamma  # step = 1 + t, t from 0
        return {"key": jax.random.key_data(key),
                "leaf_keys": jax.random.key_data(jax.random.split(sample, num_leaves)),
                "std": jnp.sqrt(annealed) if form == "variance" else annealed}

    def rule(g, leaf_keys, index, std):
        key = jax.random.wrap_key_data(leaf_keys[index], **wrap)
        return g + std * jax.random.normal(key, jnp.shape(g), std.dtype)  # compute dtype

    return elementwise(rule, name=NAME, hyperparams={"eta": eta, "gamma": gamma},
                       scalars=keys, carry={"key": data}, real_input=NO_COMPLEX_NOISE,
                       state_type=GradientNoiseState, hyperparam_name=names,
                       display={names["eta"]: eta, names["gamma"]: gamma, "form": form})
