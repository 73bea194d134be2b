"""Muon: orthogonalized momentum for the matrices, Adam for everything else."""

from __future__ import annotations

from typing import Optional

import jax

from gradchain.combinators.chain import chain
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.combinators.branch import divide_by_sqrt
from gradchain.moments.ema import ema
from gradchain.moments.nesterov import nesterov_first_moment
from gradchain.moments.nesterov_ema import nesterov_ema
from gradchain.moments.square import square
from gradchain.preconditioners.newton_schulz import (NS_COEFFS_PRESETS, is_dimension_numbers,
                                                     orthogonalize, scale_by_shape)
from gradchain.regularization.weight_decay import add_decayed_weights, maybe_add_decayed_weights
from gradchain.step_size.scale import scale_by_learning_rate
from gradchain.wrappers.partition import partition
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.core.transformation import GradientTransformation


def _labels(dimension_numbers):
    """``params -> tree of "muon" / "adam"``: Optax's choice of the leaves Muon takes."""
    def labels(params):
        if dimension_numbers is None:
            return jax.tree.map(lambda x: "muon" if x.ndim == 2 else "adam", params)
        dims = (dimension_numbers(params) if callable(dimension_numbers)
                and not is_dimension_numbers(dimension_numbers) else dimension_numbers)
        is_leaf = lambda x: x is None or is_dimension_numbers(x)
        return jax.tree.map(lambda d, sub: jax.tree.map(
            lambda _: "adam" if d is None else "muon", sub), dims, params, is_leaf=is_leaf)
    return labels


@public
def muon(learning_rate: ScalarOrSchedule, ns_coeffs=NS_COEFFS_PRESETS["standard"],
         ns_steps: int = 5, beta: ScalarOrSchedule = 0.95, eps: ScalarOrSchedule = 1e-8,
         weight_decay: ScalarOrSchedule = 0.0, weight_decay_mask=None, mu_dtype=None, *,
         nesterov: bool = True, adaptive: bool = False, preconditioning: str = "frobenius",
         adam_b1: ScalarOrSchedule = 0.9, adam_b2: ScalarOrSchedule = 0.999,
         adam_eps_root: ScalarOrSchedule = 0.0, adam_weight_decay: ScalarOrSchedule = 0.0,
         adam_learning_rate=None, muon_weight_dimension_numbers=None, consistent_rms=None,
         bias_correction: bool = True, eps_floor: bool = False, ns_dtype=None,
         adam_nesterov: Optional[bool] = None) -> GradientTransformation:
    """Muon (Jordan et al. 2024): ``θ -= γ (s · NS(m̃_t) + λθ)`` for the matrices.

    ``m_t = β m_{t-1} + (1 - β) g_t``, ``m̃_t`` its Nesterov look-ahead ``β m_t + (1 - β) g_t``
    (or ``m_t`` without ``nesterov``), both terms bias-corrected; ``NS`` the Newton-Schulz
    orthogonalization of each matrix, ``s = √max(1, fan_out/fan_in)`` (or ``consistent_rms``).
    Which leaves are matrices: the 2-D ones with ``(input, output)`` axes, or as
    ``muon_weight_dimension_numbers`` says (``MuonDimensionNumbers`` per leaf, None for the
    others; 3-D and 4-D weights are stacks of matrices); the other leaves get AdamW
    (``adam_*``, ``eps``, Optax's Nesterov choice). ``partition({"muon": chain(nesterov_ema(β),
    orthogonalize(...), scale_by_shape(...), add_decayed_weights(λ), scale_by_learning_rate(γ)),
    "adam": adamw(...)})``. Arguments, defaults and numbers are Optax's ``contrib.muon``.

    ``torch.optim.Muon(lr, weight_decay=λ, momentum=β, nesterov, eps=ε, adjust_lr_fn)`` on a
    torch ``(out, in)`` weight is ``muon(lr, beta=β, eps=ε, weight_decay=λ,
    bias_correction=False, eps_floor=True, ns_dtype=jnp.bfloat16,
    muon_weight_dimension_numbers=MuonDimensionNumbers(1, 0))`` (plus
    ``consistent_rms=0.2`` for ``"match_rms_adamw"``); torch leaves the other params to another
    optimizer: ``adam_nesterov=False`` gives ``torch.optim.AdamW`` with the same ε.

    Args:
      learning_rate: γ ``>= 0``; a number, array or schedule.
      ns_coeffs: the Newton-Schulz coefficients (``orthogonalize``).
      ns_steps: the number of Newton-Schulz iterations.
      beta: β in ``[0, 1)``, the momentum.
      eps: ε ``>= 0``, of the normalisation before the iteration and of Adam.
      weight_decay: λ ``>= 0`` for the matrices (decoupled, scaled by γ).
      weight_decay_mask: the matrices that decay.
      mu_dtype: dtype of the momenta (default: the params').
      nesterov: Nesterov's look-ahead (Muon and, unless ``adam_nesterov``, Adam).
      adaptive: scale each orthogonalized update by ``⟨m̃, NS(m̃)⟩``.
      preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"``.
      adam_b1: β1 of the Adam leaves.
      adam_b2: β2 of the Adam leaves.
      adam_eps_root: ``eps_root`` of the Adam leaves.
      adam_weight_decay: decoupled decay of the Adam leaves.
      adam_learning_rate: their learning rate (None: ``learning_rate``).
      muon_weight_dimension_numbers: which leaves are matrices and how (see above).
      consistent_rms: ρ for ``scale_by_shape``, or None.
      bias_correction: bias-correct the momentum (torch's Muon does not).
      eps_floor: normalise by ``max(‖X‖_F, ε)`` (torch's) instead of ``‖X‖_F + ε``.
      ns_dtype: the Newton-Schulz iteration's dtype (torch's: bfloat16); None: the params'.
      adam_nesterov: Nesterov for the Adam leaves (None: ``nesterov``, as Optax).

    Returns:
      A ``GradientTransformation``: the chain above (its state the tuple of its parts' states;
      ``describe_state`` lists them, ``get_hyperparams``/``set_hyperparams`` read and set the
      hyperparameters by the argument names).

    Example (two steps on a 2×2 matrix):
      >>> import jax.numpy as jnp
      >>> import gradchain as gc
      >>> params = {"w": jnp.array([[1.0, -2.0], [0.5, 1.5]])}
      >>> tx = gc.muon(learning_rate=0.1)
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[0.5, -0.5], [1.0, 0.25]])}
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      ...     params = gc.apply_updates(params, updates)
      >>> params["w"].round(4).tolist()
      [[0.9384, -1.8007], [0.3768, 1.4003]]
    """
    for name, value, high in (("adam_b1", adam_b1, 1), ("adam_b2", adam_b2, 1),
                              ("adam_eps_root", adam_eps_root, None),
                              ("adam_weight_decay", adam_weight_decay, None)):
        check_range("muon", name, value, 0, high, high_open=high is not None, record=False)
    if adam_learning_rate is not None:
        check_range("muon", "adam_learning_rate", adam_learning_rate, 0, record=False)
    dims = muon_weight_dimension_numbers
    matrices = chain(
        nesterov_ema(beta, nesterov=nesterov, debias=bias_correction, dtype=mu_dtype,
                     hyperparam_name="beta"),
        orthogonalize(ns_coeffs, ns_steps, eps, preconditioning, dims, adaptive=adaptive,
                      eps_floor=eps_floor, ns_dtype=ns_dtype),
        scale_by_shape(dims, consistent_rms),
        maybe_add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate))
    # AdamW for the other leaves, its hyperparameters stored under muon's argument names.
    first = (nesterov_first_moment(adam_b1, dtype=mu_dtype, hyperparam_name={"b1": "adam_b1"})
             if (nesterov if adam_nesterov is None else adam_nesterov)
             else ema(adam_b1, debias=True, dtype=mu_dtype, hyperparam_name="adam_b1"))
    second = chain(square(), ema(adam_b2, debias=True, real=True, hyperparam_name="adam_b2"))
    others = chain(
        divide_by_sqrt(first, second, eps=eps, eps_root=adam_eps_root,
                       hyperparam_name={"eps_root": "adam_eps_root"}),
        add_decayed_weights(adam_weight_decay, hyperparam_name="adam_weight_decay"),
        scale_by_learning_rate(learning_rate) if adam_learning_rate is None
        else scale_by_learning_rate(adam_learning_rate, hyperparam_name="adam_learning_rate"))
    return partition({"muon": matrices, "adam": others}, _labels(dims))
