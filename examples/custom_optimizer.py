"""Write your own optimizer with gradchain's public kit, and check it against Optax.

Five new pieces, each built from public names only (``gradchain.<name>``), each run on the same
small network (scikit-learn's bundled handwritten digits) beside its Optax twin:

1. a stateless primitive in one line: ``sign`` (signSGD's direction);
2. a new stateful primitive: Adan's gradient difference ``g_t - g_{t-1}``, inside a full Adan;
3. a shared statistic: AdaBelief whose first moment is kept once (Optax's state size);
4. a per-leaf matrix rule: Muon's Newton-Schulz orthogonalization of each weight matrix;
5. a cross-leaf rule: clipping by the global norm of all gradients.

    python examples/custom_optimizer.py [--steps 100]

Each line prints the final training loss of both libraries and the largest difference between
their parameters (float64).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

import gradchain as gc

jax.config.update("jax_enable_x64", True)


# 1. A stateless primitive: the rule is the whole definition. ---------------------------------

def sign():
    """``u -> sign(u)``."""
    return gc.elementwise(jnp.sign, name="sign")


# 2. A new stateful primitive: the statistic is the previous gradient. -------------------------

def gradient_difference():
    """``g_t - g_{t-1}``, 0 at the first step; the state keeps ``g_{t-1}``."""
    def rule(u, stat, step):
        return jnp.where(step == 1, jnp.zeros_like(u), u - stat), u
    return gc.elementwise(rule, name="gradient_difference", statistic=0.0)


def debiased_ema(decay, name):
    """``m_t / (1 - decay^t)``: one decay serves the average and its correction."""
    return gc.ema(decay, debias=True, hyperparam_name=name)


@gc.public
def adan(learning_rate, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=1e-8):
    """Adan (Xie et al. 2022), as Optax: ``(m̂ + (1-β2) v̂) / (√(n̂ + ε_root) + ε)`` with
    ``m = EMA_β1(g)``, ``v = EMA_β2(Δg)``, ``n = EMA_β3((g + (1-β2) Δg)²)``; the gradient
    difference ``Δg`` is computed once and shared by ``v`` and ``n``."""
    for name, value in (("b1", b1), ("b2", b2), ("b3", b3)):
        gc.check_range("adan", name, value, 0, 1, high_open=True)
    difference = gc.share("diff", gradient_difference())
    momentum = gc.branch(
        gc.chain(difference, debiased_ema(b2, "b2")), debiased_ema(b1, "b1"),
        combine=lambda v, m, b2: m + (1 - b2) * v, b2=b2)
    corrected = gc.elementwise(lambda u, diff, b2: jnp.square(u + (1 - b2) * diff),
                               name="corrected_gradient_square", hyperparams={"b2": b2},
                               reads=("diff",))
    return gc.chain(
        gc.divide_by_sqrt(momentum, gc.chain(corrected, debiased_ema(b3, "b3")),
                          eps=eps, eps_root=eps_root),
        gc.scale_by_learning_rate(learning_rate))


# 3. A shared statistic: AdaBelief's m feeds its numerator and its denominator. ---------------

@gc.public
def adabelief(learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16):
    """AdaBelief (Zhuang et al. 2020), as Optax: ``m̂ / (√ŝ + ε)`` with the belief
    ``s = β2 s + (1-β2)(g - m)² + ε_root``; ``m`` is kept once and read by both sides."""
    gc.check_range("adabelief", "b2", b2, 0, 1, high_open=True)
    m = gc.share("m", gc.ema(b1, hyperparam_name="b1"))

    def belief_rule(u, stat, m, b2, eps_root):
        new = b2 * stat + (1 - b2) * jnp.square(u - m) + eps_root
        return new, new

    belief = gc.elementwise(belief_rule, name="belief", hyperparams={"b2": b2,
                                                                     "eps_root": eps_root},
                            statistic=0.0, reads=("m",), output_dtype="statistic")
    return gc.chain(
        gc.divide_by_sqrt(gc.chain(m, gc.bias_correction(b1, hyperparam_name="b1")),
                          gc.chain(belief, gc.bias_correction(b2, hyperparam_name="b2")),
                          eps=eps),
        gc.scale_by_learning_rate(learning_rate))


# 4. A per-leaf matrix rule: the whole leaf at once (run on a network without biases, as Optax's
#    scale_by_muon orthogonalizes every leaf). ----------------------------------------------------

NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)


def orthogonalize(steps=5, eps=1e-8):
    """Muon's quintic Newton-Schulz iteration ``X ← aX + (b XXᵀ + c (XXᵀ)²) X`` from
    ``X = G / ‖G‖_F`` (on the transpose of a tall matrix); other leaves pass through."""
    a, b, c = NEWTON_SCHULZ

    def rule(u):
        if jnp.ndim(u) != 2:
            return u
        tall = u.shape[0] > u.shape[1]
        x = u.T if tall else u
        x = x / (jnp.linalg.norm(x) + eps)
        for _ in range(steps):
            gram = x @ x.T
            x = a * x + (b * gram + c * gram @ gram) @ x
        return x.T if tall else x

    return gc.per_leaf(rule, name="orthogonalize")


# 5. A cross-leaf rule: a reduction over the whole tree. ---------------------------------------

@gc.public
def clip_to_global_norm(max_norm, axis_name=None):
    """``u · min(1, max_norm / ‖u‖)`` with ``‖u‖`` the norm of all leaves together."""
    gc.check_range("clip_to_global_norm", "max_norm", max_norm, 0, low_open=True)
    return gc.cross_leaf(
        lambda u, factor: u * factor, name="clip_to_global_norm",
        hyperparams={"max_norm": max_norm}, axis_name=axis_name,
        reductions={"squares": gc.tree_sum(lambda u: jnp.sum(jnp.square(u)))},
        scalars=lambda squares, max_norm: {
            "factor": jnp.minimum(1.0, max_norm / jnp.sqrt(squares))})


# The comparison. ------------------------------------------------------------------------------

def digits():
    x, y = load_digits(return_X_y=True)
    return jnp.asarray(StandardScaler().fit_transform(x)), jnp.asarray(y)


def init_mlp(key, sizes=(64, 32, 10), biases=True):
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, sub = jax.random.split(key)
        params[f"layer{i}"] = {"w": jax.random.normal(sub, (n_in, n_out)) / np.sqrt(n_in)}
        if biases:
            params[f"layer{i}"]["b"] = jnp.zeros(n_out)
    return params


def loss(params, x, y):
    h = x
    for i in range(len(params)):
        layer = params[f"layer{i}"]
        h = h @ layer["w"] + layer.get("b", 0.0)
        if i < len(params) - 1:
            h = jnp.tanh(h)
    return -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(len(y)), y])


def train(tx, params, data, steps):
    x, y = data

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    state = tx.init(params)
    for _ in range(steps):
        params, state, value = step(params, state)
    return params, float(loss(params, x, y)), state


def bytes_of_statistics(state, params):
    shapes = {jnp.shape(p) for p in jax.tree.leaves(params)}
    return sum(x.nbytes for x in jax.tree.leaves(state) if jnp.shape(x) in shapes)


def comparisons(lr=1e-2):
    return [
        ("1 stateless: sign (signSGD)",
         gc.chain(sign(), gc.scale_by_learning_rate(lr)), optax.sign_sgd(lr), "all"),
        ("2 stateful: Adan's gradient difference", adan(lr), optax.adan(lr), "all"),
        ("3 shared statistic: AdaBelief", adabelief(lr), optax.adabelief(lr), "all"),
        ("4 per leaf: Newton-Schulz (Muon's step)",
         gc.chain(orthogonalize(), gc.scale_by_learning_rate(lr)),
         optax.chain(optax.contrib.scale_by_muon(
             beta=0.0, nesterov=False, weight_dimension_numbers=lambda updates: jax.tree.map(
                 lambda _: optax.contrib.MuonDimensionNumbers(), updates)),
                     optax.scale_by_learning_rate(lr)), "matrices only"),
        ("5 cross leaf: global-norm clipping + SGD",
         gc.chain(clip_to_global_norm(0.5), gc.scale_by_learning_rate(lr)),
         optax.chain(optax.clip_by_global_norm(0.5), optax.sgd(lr)), "all"),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args(argv)
    data = digits()
    models = {"all": init_mlp(jax.random.key(0)),
              "matrices only": init_mlp(jax.random.key(0), biases=False)}
    print(f"{'primitive':42s} {'gradchain loss':>14s} {'optax loss':>11s} {'max |Δθ|':>9s} "
          f"{'state (gc/optax)':>17s}")
    rows = []
    for title, ours, theirs, model in comparisons():
        params = models[model]
        mine, my_loss, my_state = train(ours, params, data, args.steps)
        ref, ref_loss, ref_state = train(theirs, params, data, args.steps)
        gap = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                  zip(jax.tree.leaves(mine), jax.tree.leaves(ref)))
        sizes = f"{bytes_of_statistics(my_state, params)}/{bytes_of_statistics(ref_state, params)}"
        print(f"{title:42s} {my_loss:14.6f} {ref_loss:11.6f} {gap:9.1e} {sizes:>17s}")
        rows.append((title, my_loss, ref_loss, gap))
    return rows


if __name__ == "__main__":
    main()
