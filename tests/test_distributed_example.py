"""``examples/distributed.py``: two processes on loopback (gloo) train to the numbers of one.

Each run starts real processes (``jax.distributed.initialize``), each with 4 simulated CPU
devices: one process has 4 devices, two have 8, and the Adam moments are split over all of
them. The final params must agree within 1e-5 (float32; only the order of sums differs).
"""

import os
import subprocess
import sys

import numpy as np

from examples_module import EXAMPLES, load_example

SCRIPT = EXAMPLES / "distributed.py"
ROOT = EXAMPLES.parent


def run(processes, out):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--processes", str(processes), "--steps", "15",
         "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{processes} process(es), {4 * processes} devices" in result.stdout
    return np.load(out)


def test_two_processes_give_the_numbers_of_one(tmp_path):
    one, two = run(1, tmp_path / "one.npz"), run(2, tmp_path / "two.npz")
    assert int(one["process_count"]) == 1 and int(two["process_count"]) == 2
    names = ["b1", "b2", "w1", "w2"]
    assert sorted(k for k in one.files if k != "process_count") == names
    for name in names:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6, err_msg=name)
    _, _, initial = load_example("distributed").problem()
    assert not np.allclose(one["w1"], initial["w1"])  # it trained
