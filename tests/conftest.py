"""Test-wide JAX set-up: 8 simulated CPU devices (pmap/sharding tests) and float64 enabled.

Both must be set before JAX initialises its backend, hence here. Tests that need float32 say
so with explicit dtypes.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
