"""Test-wide JAX set-up: 8 simulated CPU devices (pmap/sharding tests) and float64 enabled.

Both must be set before JAX initialises its backend, hence here. Tests that need float32 say
so with explicit dtypes.

Compiled programs are kept in a persistent compilation cache shared by the run's xdist
workers (one folder per run, keyed by the pytest process): the registry-driven tests compile
the same update of the same row in several files, and a program compiled once is then loaded,
not compiled again. A cache hit loads the same executable, so no number changes.
"""

import os
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
jax.config.update("jax_compilation_cache_dir",
                  os.path.join(tempfile.gettempdir(), f"gradchain-tests-jax-cache-{_RUN}"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
