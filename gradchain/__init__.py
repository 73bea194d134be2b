"""gradchain: optimizers for JAX built by chaining small, pure gradient transformations.

The public API, by concept (each name's home module is its only import path):

- protocol and combinators: ``GradientTransformation``, ``identity``, ``chain``, ``branch``,
  ``divide_by_sqrt``, ``apply_updates``;
- moments (where momentum lives): ``scale_by_momentum``, ``ema``, ``bias_correction``,
  ``square``, ``accumulate``, ``max_v``, ``scale_by_delta_rms``;
- preconditioners: ``scale_by_rss``, ``scale_by_rms``, ``scale_by_stddev``, ``scale_by_adam``,
  ``scale_by_amsgrad``, ``scale_by_adadelta``, ``first_moment``, ``second_moment``;
- step sizes: ``scale``, ``scale_by_learning_rate``;
- regularization: ``add_decayed_weights``;
- optimizers (aliases): ``sgd``, ``adagrad``, ``rmsprop``, ``adadelta``, ``adam``, ``adamw``,
  ``amsgrad``;
- optimizers of issue 11 (Optax's names and numbers): ``novograd``, ``adopt``, ``ademamix``,
  ``simplified_ademamix``, ``madgrad``, ``adafactor``, ``muon``; their primitives
  ``scale_by_novograd``, ``scale_by_layer_rms``, ``momentum_sum``, ``scale_by_adopt``,
  ``scale_by_previous_rms``, ``nesterov_ema``, ``scale_by_ademamix``,
  ``scale_by_simplified_ademamix``, ``scale_by_madgrad``, ``scale_by_factored_rms``,
  ``scale_by_param_block_rms``, ``orthogonalize`` (``newton_schulz``,
  ``MuonDimensionNumbers``), ``scale_by_shape``;
- optimizers from the notes' second half: ``adabound``, ``amsbound``, ``swats``, ``radam``,
  ``nadam``, ``sgdw``, ``lars``, ``lamb``, ``noisy_sgd``, ``lookahead``; their primitives:
  ``clip_lr``, ``per_parameter_step``, ``rectified_step_size``, ``scale_by_radam``,
  ``nesterov_first_moment``, ``folded_bias_correction``, ``scale_by_trust_ratio``,
  ``add_gradient_noise``, ``switch_to_sgd``;
- optimizers people train with today, sign and memory-light: ``lion``, ``sign_sgd``,
  ``signum``, ``rprop``, ``fromage``, ``optimistic_gradient_descent``; the Adam family:
  ``adabelief``, ``adan``, ``adamax``, ``adamaxw``, ``yogi``, ``nadamw``; their primitives:
  ``scale_by_sign``, ``scale_by_lion``, ``scale_by_rprop``, ``fromage_step``,
  ``gradient_difference``, ``scale_by_optimistic_gradient``, ``infinity_moment``,
  ``scale_by_adamax``, ``yogi_second_moment``, ``scale_by_yogi``, ``belief_second_moment``,
  ``nesterov_look_ahead``, ``scale_by_belief``, ``scale_by_adan``;
- schedule-free and learning-rate-free (Optax's ``contrib``): ``schedule_free``,
  ``schedule_free_sgd``, ``schedule_free_adamw``, ``schedule_free_eval_params``, ``prodigy``,
  ``dadapt_adamw``, ``dog``, ``dowg``, ``cocob``, ``mechanize``; their primitives:
  ``scale_by_dog``, ``scale_by_dowg``, ``scale_by_cocob``;
- clipping: ``clip``, ``clip_by_global_norm``, ``global_norm``, ``clip_by_block_rms``,
  ``adaptive_grad_clip``, ``unitwise_norm``;
- wrappers: ``param_groups``, ``partition``/``multi_transform``, ``apply_where``, ``masked``,
  ``freeze_where``, ``freeze``, ``selective_transform``, ``set_to_zero``, ``flatten``,
  ``accumulate_gradients``, ``MultiSteps``, ``skip_non_finite``, ``apply_if_finite``,
  ``MaskedNode``;
- introspection: ``describe``, ``describe_state``, ``find_state``, ``find_states``,
  ``state_bytes``, ``state_sharding`` (the state's shardings on a device mesh, ZeRO-1 with
  ``shard_over``);
- the composition kit (write your own primitive): ``elementwise``, ``per_leaf``,
  ``cross_leaf`` (with the reductions ``tree_sum``, ``tree_max``), shared statistics ``share``,
  ``shared``; ``Contract`` (the checks and bookkeeping for a state layout of one's own),
  ``public`` (decorate a constructor so errors name it), ``check_range`` (validate a
  hyperparameter), ``ScalarOrSchedule``; states ``StatisticState``, ``HyperparamsState``,
  ``ShareState``;
- execution: ``one_pass`` (a chain's per-element work as one compiled loop over all leaves
  on the CPU), ``one_pass_function``, ``one_pass_available``;
- state formats: ``quantized`` (8-bit block-wise statistics, a state dtype) and its leaves
  ``QuantizedArray``;
- interop: ``from_optax_state`` (an Optax optimizer's state as the gradchain optimizer's, to
  resume an Optax checkpoint);
- learning-rate policy: the ``schedules`` module (every PyTorch scheduler, Optax's schedule
  names, batch-size scaling rules), ``reduce_on_plateau``; hyperparameters at run time:
  ``get_hyperparams``, ``get_hyperparam``, ``set_hyperparams``, ``constructor_changes``,
  ``effective_learning_rate``; the LR range test
  ``lr_finder``; pictures: ``plot_schedules``, ``plot_lr_finder`` (matplotlib, optional).
"""

from gradchain.clipping.adaptive import AdaptiveGradClipState, adaptive_grad_clip, unitwise_norm
from gradchain.clipping.block_rms import ClipByBlockRmsState, clip_by_block_rms
from gradchain.clipping.global_norm import ClipByGlobalNormState, clip_by_global_norm, global_norm
from gradchain.clipping.value import ClipState, clip
from gradchain.combinators.branch import BranchState, branch, divide_by_sqrt
from gradchain.combinators.chain import chain
from gradchain.core.quantized import QuantizedArray, quantized
from gradchain.core.transformation import EmptyState, GradientTransformation, identity
from gradchain.core.updates import apply_updates
from gradchain.execution.one_pass import one_pass, one_pass_available, one_pass_function
from gradchain.introspection.hyperparams import (constructor_changes, get_hyperparam,
                                                 get_hyperparams, set_hyperparams)
from gradchain.introspection.learning_rate import effective_learning_rate
from gradchain.introspection.describe import describe, describe_state, state_bytes
from gradchain.introspection.find import find_state, find_states
from gradchain.introspection.sharding import state_sharding
from gradchain.interop.optax_state import from_optax_state
from gradchain.tools.lr_finder import LRFinderResult, lr_finder
from gradchain.core.public import public
from gradchain.core.validation import check_range
from gradchain.kit.contract import Contract
from gradchain.kit.reductions import tree_max, tree_sum
from gradchain.core.hyperparams import ScalarOrSchedule
from gradchain.kit.rules import (HyperparamsState, StatisticState, cross_leaf,
                                 elementwise, per_leaf)
from gradchain.kit.shared import ShareState, share, shared
from gradchain.moments.accumulate import AccumulateState, accumulate
from gradchain.moments.bias_correction import BiasCorrectionState, bias_correction
from gradchain.moments.delta_rms import DeltaRmsState, scale_by_delta_rms
from gradchain.moments.ema import EmaState, ema
from gradchain.moments.folded_bias_correction import (FoldedBiasCorrectionState,
                                                   folded_bias_correction)
from gradchain.moments.max_v import MaxVState, max_v
from gradchain.moments.momentum import MomentumState, scale_by_momentum
from gradchain.moments.nesterov import NesterovMomentState, nesterov_first_moment
from gradchain.moments.square import square
from gradchain.optimizers.adabound import adabound, amsbound
from gradchain.optimizers.adadelta import adadelta
from gradchain.optimizers.adagrad import adagrad
from gradchain.optimizers.adam import adam, adamw, amsgrad
from gradchain.optimizers.nadam import nadam
from gradchain.optimizers.noisy_sgd import noisy_sgd
from gradchain.optimizers.radam import radam
from gradchain.optimizers.rmsprop import rmsprop
from gradchain.optimizers.sgd import sgd
from gradchain.optimizers.sgdw import sgdw
from gradchain.optimizers.swats import swats
from gradchain.optimizers.trust_ratio import lamb, lars
from gradchain.preconditioners.adadelta import scale_by_adadelta
from gradchain.preconditioners.adam import (first_moment, scale_by_adam, scale_by_amsgrad,
                                            second_moment)
from gradchain.preconditioners.radam import (RectifiedStepSizeState, rectified_step_size,
                                             scale_by_radam)
from gradchain.preconditioners.rms import scale_by_rms, scale_by_stddev
from gradchain.preconditioners.rss import scale_by_rss
from gradchain.preconditioners.trust_ratio import TrustRatioState, scale_by_trust_ratio
from gradchain.tools.plotting import plot_lr_finder, plot_schedules
from gradchain.regularization.gradient_noise import GradientNoiseState, add_gradient_noise
from gradchain.regularization.weight_decay import (WeightDecayState, add_decayed_weights,
                                                   maybe_add_decayed_weights)
from gradchain import schedules
from gradchain.schedules.plateau import ReduceOnPlateauState, reduce_on_plateau
from gradchain.step_size.clip_lr import ClipLrState, clip_lr
from gradchain.step_size.per_parameter import per_parameter_step
from gradchain.step_size.scale import ScaleState, scale, scale_by_learning_rate
from gradchain.wrappers.accumulate import MultiSteps, MultiStepsState, accumulate_gradients
from gradchain.wrappers.finite import ApplyIfFiniteState, apply_if_finite, skip_non_finite
from gradchain.wrappers.freeze import freeze, freeze_where, selective_transform, set_to_zero
from gradchain.wrappers.flatten import FlattenState, flatten
from gradchain.wrappers.labels import MaskedNode
from gradchain.wrappers.lookahead import LookaheadState, lookahead
from gradchain.wrappers.masked import MaskedState, apply_where, masked
from gradchain.wrappers.partition import PartitionState, multi_transform, param_groups, partition
from gradchain.wrappers.switch_to_sgd import SwitchToSgdState, switch_to_sgd
# Issue 11 (k8): Adam family part 2, factored and matrix-wise optimizers, their primitives.
from gradchain.moments.momentum_sum import MomentumSumState, momentum_sum
from gradchain.moments.nesterov_ema import NesterovEmaState, nesterov_ema
from gradchain.optimizers.adafactor import adafactor
from gradchain.optimizers.ademamix import ademamix, simplified_ademamix
from gradchain.optimizers.adopt import adopt
from gradchain.optimizers.madgrad import madgrad
from gradchain.optimizers.muon import muon
from gradchain.optimizers.novograd import novograd
from gradchain.preconditioners.ademamix import scale_by_ademamix, scale_by_simplified_ademamix
from gradchain.preconditioners.adopt import PreviousRmsState, scale_by_adopt, scale_by_previous_rms
from gradchain.preconditioners.factored_rms import (FactoredMoments, FactoredRmsState,
                                                    scale_by_factored_rms)
from gradchain.preconditioners.madgrad import MadgradState, scale_by_madgrad
from gradchain.preconditioners.newton_schulz import (MuonDimensionNumbers, OrthogonalizeState,
                                                     newton_schulz, orthogonalize,
                                                     scale_by_shape)
from gradchain.preconditioners.novograd import LayerRmsState, scale_by_layer_rms, scale_by_novograd
from gradchain.step_size.param_scale import ParamBlockRmsState, scale_by_param_block_rms
# Issue 11 (k10): weight averaging.
from gradchain.averaging.ema_params import EmaParamsState, ema_eval_params, ema_params
from gradchain.averaging.swa import SwaState, swa, swa_eval_params
from gradchain.averaging.swalr import swalr
# Issue 11 (k10): Kronecker-factored preconditioners (SOAP, Shampoo).
from gradchain.preconditioners.shampoo import (ScaleByShampooState, ShampooStatistics,
                                               scale_by_shampoo)
from gradchain.preconditioners.soap import ScaleBySoapState, SoapStatistics, scale_by_soap
from gradchain.optimizers.shampoo import shampoo
from gradchain.optimizers.soap import soap

from gradchain.moments.belief import BeliefMomentState, belief_second_moment
from gradchain.moments.gradient_difference import GradientDifferenceState, gradient_difference
from gradchain.moments.infinity_moment import InfinityMomentState, infinity_moment
from gradchain.moments.nesterov_look_ahead import nesterov_look_ahead
from gradchain.moments.optimistic_gradient import scale_by_optimistic_gradient
from gradchain.moments.yogi import YogiMomentState, yogi_second_moment
from gradchain.optimizers.adabelief import adabelief
from gradchain.optimizers.adamax import adamax, adamaxw
from gradchain.optimizers.adan import adan
from gradchain.optimizers.fromage import fromage
from gradchain.optimizers.lion import lion
from gradchain.optimizers.nadamw import nadamw
from gradchain.optimizers.optimistic import optimistic_gradient_descent
from gradchain.optimizers.rprop import rprop
from gradchain.optimizers.sign_sgd import sign_sgd, signum
from gradchain.optimizers.yogi import yogi
from gradchain.preconditioners.adamax import scale_by_adamax
from gradchain.preconditioners.adan import scale_by_adan
from gradchain.preconditioners.belief import scale_by_belief
from gradchain.preconditioners.lion import LionState, scale_by_lion
from gradchain.preconditioners.sign import scale_by_sign
from gradchain.preconditioners.yogi import scale_by_yogi
from gradchain.step_size.fromage_step import fromage_step
from gradchain.step_size.rprop import RpropState, RpropSteps, scale_by_rprop

# Issue 11: schedule-free and learning-rate-free optimizers, and their primitives.
from gradchain.optimizers.cocob import cocob
from gradchain.optimizers.d_adaptation import dadapt_adamw, prodigy
from gradchain.preconditioners.d_adaptation import DAdaptAdamWState, ProdigyState
from gradchain.optimizers.dog import dog, dowg
from gradchain.optimizers.schedule_free import schedule_free_adamw, schedule_free_sgd
from gradchain.step_size.cocob import CocobState, CocobStats, scale_by_cocob
from gradchain.step_size.dog import DogState, DowgState, scale_by_dog, scale_by_dowg
from gradchain.wrappers.mechanize import MechanicState, mechanize
from gradchain.wrappers.schedule_free import (ScheduleFreeState, schedule_free,
                                              schedule_free_eval_params)

__version__ = "0.1.0"

__all__ = [
    "AccumulateState", "BiasCorrectionState", "BranchState", "DeltaRmsState", "EmaState",
    "EmptyState", "GradientTransformation", "MaxVState", "MomentumState", "ScaleState",
    "WeightDecayState", "accumulate", "adadelta", "adagrad", "adam", "adamw",
    "add_decayed_weights", "amsgrad", "apply_updates", "bias_correction", "branch", "chain",
    "divide_by_sqrt", "ema", "first_moment", "identity", "max_v", "maybe_add_decayed_weights",
    "rmsprop", "scale", "scale_by_adadelta", "scale_by_adam", "scale_by_amsgrad",
    "scale_by_delta_rms", "scale_by_learning_rate", "scale_by_momentum", "scale_by_rms",
    "scale_by_rss", "scale_by_stddev", "second_moment", "sgd", "square",
    "AdaptiveGradClipState", "ApplyIfFiniteState", "ClipByBlockRmsState",
    "ClipByGlobalNormState", "ClipState", "MaskedNode", "MaskedState", "MultiSteps",
    "MultiStepsState", "PartitionState", "adaptive_grad_clip", "apply_if_finite", "apply_where",
    "accumulate_gradients", "clip", "clip_by_block_rms", "clip_by_global_norm", "describe",
    "describe_state", "find_state", "find_states", "flatten", "FlattenState", "freeze",
    "freeze_where", "global_norm",
    "masked", "multi_transform", "param_groups", "partition", "selective_transform",
    "set_to_zero", "skip_non_finite", "state_bytes", "unitwise_norm",
    "ClipLrState", "FoldedBiasCorrectionState", "GradientNoiseState", "LookaheadState",
    "NesterovMomentState", "RectifiedStepSizeState", "SwitchToSgdState", "TrustRatioState",
    "adabound", "add_gradient_noise", "amsbound", "clip_lr", "folded_bias_correction", "lamb",
    "lars", "lookahead", "nadam", "nesterov_first_moment", "noisy_sgd", "per_parameter_step",
    "radam", "rectified_step_size", "scale_by_radam", "scale_by_trust_ratio", "sgdw", "swats",
    "switch_to_sgd",
    "LRFinderResult", "ReduceOnPlateauState", "constructor_changes",
    "effective_learning_rate", "get_hyperparam", "get_hyperparams", "lr_finder",
    "plot_lr_finder", "plot_schedules", "reduce_on_plateau", "schedules", "set_hyperparams",
    "from_optax_state", "state_sharding",
    "QuantizedArray", "quantized",
    "one_pass", "one_pass_available", "one_pass_function",
    "Contract", "HyperparamsState", "ScalarOrSchedule", "ShareState", "StatisticState",
    "check_range", "cross_leaf", "elementwise", "per_leaf", "public", "share", "shared",
    "tree_max", "tree_sum",
    "BeliefMomentState", "GradientDifferenceState", "InfinityMomentState", "LionState",
    "RpropState", "RpropSteps", "YogiMomentState", "adabelief", "adamax", "adamaxw", "adan",
    "belief_second_moment", "fromage", "fromage_step", "gradient_difference",
    "infinity_moment", "lion", "nadamw", "nesterov_look_ahead", "optimistic_gradient_descent",
    "rprop", "scale_by_adamax", "scale_by_adan", "scale_by_belief", "scale_by_lion",
    "scale_by_optimistic_gradient", "scale_by_rprop", "scale_by_sign", "scale_by_yogi",
    "sign_sgd", "signum", "yogi", "yogi_second_moment",
    # Issue 11 (k8)
    "FactoredMoments", "FactoredRmsState", "LayerRmsState", "MadgradState",
    "MomentumSumState", "MuonDimensionNumbers", "NesterovEmaState", "OrthogonalizeState",
    "ParamBlockRmsState", "PreviousRmsState", "adafactor", "ademamix", "adopt", "madgrad",
    "momentum_sum", "muon", "nesterov_ema", "newton_schulz", "novograd", "orthogonalize",
    "scale_by_ademamix", "scale_by_adopt", "scale_by_factored_rms", "scale_by_layer_rms",
    "scale_by_madgrad", "scale_by_novograd", "scale_by_param_block_rms",
    "scale_by_previous_rms", "scale_by_shape", "scale_by_simplified_ademamix",
    "simplified_ademamix",
    # Issue 11 (k10): weight averaging.
    "EmaParamsState", "SwaState", "ema_eval_params", "ema_params", "swa", "swa_eval_params",
    "swalr",
    # Issue 11 (k10): Kronecker-factored preconditioners (SOAP, Shampoo).
    "ScaleByShampooState", "ScaleBySoapState", "ShampooStatistics", "SoapStatistics",
    "scale_by_shampoo", "scale_by_soap", "shampoo", "soap",
    "CocobState", "CocobStats", "DAdaptAdamWState", "DogState", "DowgState", "MechanicState",
    "ProdigyState", "ScheduleFreeState", "cocob", "dadapt_adamw", "dog", "dowg", "mechanize",
    "prodigy", "scale_by_cocob", "scale_by_dog", "scale_by_dowg", "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params", "schedule_free_sgd",
]
