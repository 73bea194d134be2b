"""``examples/distributed.py``: two processes on loopback (gloo) train to the numbers of one, and
an Orbax checkpoint written by either restores in the other and continues.

Each run starts real processes (``jax.distributed.initialize``), each with 4 simulated CPU
devices: one process has 4 devices, two have 8, and the Adam moments are split over all of
them. The final params must agree within 1e-5 (float32; only the order of sums differs). Both
uninterrupted runs save a checkpoint (params, the split moments, the step) after ``SAVE_AT``
steps; a run with the other process count resumes from it. In this test's own process (8
devices, no ``jax.distributed``), a resumed run is bit-identical to the uninterrupted one, and a
checkpoint of two processes restores onto a 4-device mesh in the shardings asked for.
"""

import os
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import gradchain as gc
from examples_module import EXAMPLES, load_example

SCRIPT = EXAMPLES / "distributed.py"
ROOT = EXAMPLES.parent
NAMES = ["b1", "b2", "w1", "w2"]
STEPS, SAVE_AT = 15, 8

distributed = load_example("distributed")


def run(processes, out, *options):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--processes", str(processes), "--steps", str(STEPS),
         "--out", str(out), *map(str, options)], cwd=ROOT, capture_output=True, text=True,
        timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{processes} process(es), {4 * processes} devices" in result.stdout
    return np.load(out), result.stdout


def assert_close(actual, expected):
    assert sorted(k for k in actual.files if k != "process_count") == NAMES
    for name in NAMES:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """``{processes: (final params, checkpoint directory)}`` of runs with 1 and 2 processes."""
    runs = {}
    for processes in (1, 2):
        directory = tmp_path_factory.mktemp(f"run{processes}")
        out, _ = run(processes, directory / "params.npz", "--save-at", SAVE_AT,
                     "--checkpoint", directory / "checkpoint")
        runs[processes] = out, directory / "checkpoint"
    return runs


def test_two_processes_give_the_numbers_of_one(uninterrupted):
    (one, _), (two, _) = uninterrupted[1], uninterrupted[2]
    assert int(one["process_count"]) == 1 and int(two["process_count"]) == 2
    assert_close(two, one)
    _, _, initial = distributed.problem()
    assert not np.allclose(one["w1"], initial["w1"])  # it trained


@pytest.mark.parametrize("written_by, resumed_by", [(2, 1), (1, 2)])
def test_checkpoint_resumes_with_another_process_count(uninterrupted, tmp_path, written_by,
                                                       resumed_by):
    resumed, stdout = run(resumed_by, tmp_path / "params.npz", "--resume",
                          uninterrupted[written_by][1])
    assert f"resumed at step {SAVE_AT} from" in stdout
    assert int(resumed["process_count"]) == resumed_by
    assert_close(resumed, uninterrupted[resumed_by][0])
    assert_close(resumed, uninterrupted[written_by][0])


def test_resumed_run_is_bit_identical_to_the_uninterrupted_one(tmp_path):
    """In this process (8 devices): saved after 3 steps and resumed, the run ends where the
    uninterrupted one does, exactly (step count, moments and data position all restored)."""
    checkpoint = str(tmp_path / "checkpoint")
    whole = distributed.train(distributed.parse(
        ["--steps", "6", "--save-at", "3", "--checkpoint", checkpoint]))
    resumed = distributed.train(distributed.parse(["--steps", "6", "--resume", checkpoint]))
    chex.assert_trees_all_equal(resumed, whole)


def test_checkpoint_of_two_processes_restores_onto_a_smaller_mesh(uninterrupted):
    """The two processes' 8-device checkpoint read onto 4 of this process's devices: each
    moment comes back split in 4 as asked, with the values the two processes saved (the same
    as the one process's checkpoint, up to the order of float32 sums)."""
    mesh = Mesh(np.array(jax.devices()[:4]), ("data",))
    _, _, initial = distributed.problem()
    tx = distributed.optimizer(1e-2)
    params = jax.device_put(initial, NamedSharding(mesh, P()))
    shardings = gc.state_sharding(tx, params, shard_over="data")
    restored = {n: distributed.restore(uninterrupted[n][1], tx, params, shardings)
                for n in (1, 2)}
    step, restored_params, state = restored[2]
    assert step == SAVE_AT
    chex.assert_trees_all_equal_structs(state, tx.init(params))
    assert jax.tree.map(lambda a: a.sharding, state) == shardings
    moments = [x for x in jax.tree.leaves(state) if x.shape == initial["w1"].shape]
    assert len(moments) == 2  # Adam's two moments of w1, each split in 4 along its rows
    for moment in moments:
        assert moment.addressable_shards[0].data.shape == (distributed.INPUTS // 4,
                                                           distributed.HIDDEN)
    chex.assert_trees_all_close((restored_params, state), restored[1][1:], rtol=1e-5, atol=1e-6)
    assert not np.allclose(restored_params["w1"], initial["w1"])
