"""The golden trajectories of ``golden/make_torch_golden*.py``, and gradchain's errors against them.

A generator writes ``golden/<stem>_float64.npz`` and ``golden/<stem>_float32.npz`` (layout in
``golden/torch_runs.py``): ``configs``, a JSON string describing each configuration, and
``name/params/<leaf>`` (float32 also ``name/grads/<leaf>``), ``(steps, n)`` arrays. The comparisons:

- float64, closed loop (gradchain computes its own gradients): params within ``FLOAT64_BOUND``
  relative error; the generators accept only runs that amplify rounding to at most ~1e-12;
- float32, open loop (fed the recorded gradients): params within ``FLOAT32_BOUND``.
"""

import json
import pathlib

import jax.numpy as jnp
import numpy as np

from problems import max_relative_error, trajectory

GOLDEN = pathlib.Path(__file__).parent / "golden"
FLOAT64_BOUND = 1e-10
FLOAT32_BOUND = 1e-5


def load_golden(file_name):
    """``(configs, arrays)`` of ``golden/<file_name>``: the description of each configuration,
    and the trajectories keyed ``name/kind/leaf``."""
    with np.load(GOLDEN / file_name) as data:
        configs = json.loads(str(data["configs"]))
        arrays = {key: data[key] for key in data.files if "/" in key}
    return configs, arrays


def golden(arrays, name, kind):
    """The ``(steps, n)`` arrays of one configuration, per leaf: ``kind`` params or grads."""
    prefix = f"{name}/{kind}/"
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


class GoldenTrajectories:
    """One generator's two files, ``golden/<stem>_float64.npz`` and ``..._float32.npz``."""

    def __init__(self, stem):
        self.configs, self.float64 = load_golden(f"{stem}_float64.npz")
        self.float32 = load_golden(f"{stem}_float32.npz")[1]

    def closed_loop_error(self, tx, name):
        """Max relative error of ``tx``'s float64 closed-loop params against ``name``'s."""
        params, _ = trajectory(tx, jnp.float64)
        return max_relative_error(params, golden(self.float64, name, "params"))

    def open_loop(self, tx, name):
        """``(params, max relative error)`` of ``tx`` in float32 fed ``name``'s recorded
        gradients, against ``name``'s float32 params."""
        params, _ = trajectory(tx, jnp.float32, grads=golden(self.float32, name, "grads"))
        return params, max_relative_error(params, golden(self.float32, name, "params"))
