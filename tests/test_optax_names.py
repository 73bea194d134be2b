"""The wrappers and clippers offered under Optax's names take Optax's arguments (names, order,
kinds and defaults), so code written for Optax ports by changing the import; their numbers are
compared with Optax's in the tests of each module."""

import inspect

import optax
import pytest

import gradchain as gc

NAMES = ["masked", "partition", "multi_transform", "set_to_zero", "freeze", "selective_transform",
         "apply_if_finite", "clip", "clip_by_global_norm", "clip_by_block_rms",
         "adaptive_grad_clip"]


# gradchain's own arguments, allowed after Optax's: keyword-only, with a default that keeps
# Optax's behaviour
EXTENSIONS = [("axis_name", inspect.Parameter.KEYWORD_ONLY, None),
              ("hyperparam_name", inspect.Parameter.KEYWORD_ONLY, None)]


def parameters(function):
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("name", NAMES)
def test_same_signature_as_optax(name):
    ours, theirs = parameters(getattr(gc, name)), parameters(getattr(optax, name))
    assert ours[:len(theirs)] == theirs
    assert all(extra in EXTENSIONS for extra in ours[len(theirs):]), ours[len(theirs):]


def test_multi_steps_has_optax_signature_and_methods():
    ours, theirs = parameters(gc.MultiSteps.__init__), parameters(optax.MultiSteps.__init__)
    assert [p[:2] for p in ours] == [p[:2] for p in theirs]
    assert [p[2] for p in ours[2:]] == [p[2] for p in theirs[2:]]  # defaults of the options
    for method in ("init", "update", "has_updated", "gradient_transformation", "inner_opt"):
        assert hasattr(gc.MultiSteps(gc.sgd(0.1), 2), method)
