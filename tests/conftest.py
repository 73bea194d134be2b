"""Test-wide JAX set-up: 8 simulated CPU devices (pmap/sharding tests), float64 enabled, and
XLA's optimizations off except where a test needs XLA's optimized code.

The devices and float64 must be set before JAX initialises its backend, hence here. Tests that
need float32 say so with explicit dtypes.

The suite compiles thousands of small programs and runs each for a few steps, so its time is
mostly XLA's compiler; ``jax_disable_most_optimizations`` (LLVM's cheap pipeline) took the
whole suite from 11:01 to 9:35 on the 2-core development machine (BUILD.md), and every program
still computes the same formulas (roundings differ by an ulp where the optimized code fuses
multiply-adds). A test whose assertion depends on how XLA's optimized code rounds (the
one-pass kernels agree with it to the bit; float32 Newton-Schulz iterations compared at 1e-5)
is marked ``optimized_xla`` (a module sets ``pytestmark``) and runs with XLA's defaults.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


# The longest files first (25-110 s each on this 2-core machine, half the suite's time):
# ``--dist loadfile`` hands files to the xdist workers in collection order, so the short ones
# fill in at the end and the two workers finish close together.
LONGEST_FIRST = ("test_optax_parity.py", "test_transforms.py", "test_matrix_optimizers.py",
                 "test_one_pass.py", "test_matrix_preconditioners.py",
                 "test_distributed_example.py", "test_tying.py", "test_quantized.py",
                 "test_hyperparam_policy.py", "test_dtypes.py")


def pytest_collection_modifyitems(items):
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_configure(config):
    config.addinivalue_line("markers", "optimized_xla: run with XLA's optimizations on (the "
                            "assertion depends on how its optimized code rounds)")


@pytest.fixture(autouse=True)
def _xla_optimizations(request):
    optimized = request.node.get_closest_marker("optimized_xla") is not None
    jax.config.update("jax_disable_most_optimizations", not optimized)
