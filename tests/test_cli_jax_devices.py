"""The command line on KERAS_BACKEND=jax across devices (`keras.distribution.DataParallel`).

Two forced host devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`) with
`--strategy=data_parallel` train the default digits config (views augmented on the
device) to the same weights as one device: each device takes half of every global
batch, the step sees the global batch as one array (BatchNorm statistics, the loss'
negatives) and the gradients are summed across the devices.
"""

import os

import pytest

from _cli_runs import assert_close_checkpoints, run_cli

STEPS = 5  # 1,437 training digits // 256 per global batch, one epoch
ARGS = ["--config=configs/digits_supcon.py:local", "--config.pretrain.epochs=1",
        "--mode=pretrain", "--config.deterministic=True"]


def test_two_devices_equal_one_device(tmp_path):
    pytest.importorskip("jax")
    status, out = run_cli([*ARGS, "--strategy=data_parallel", f"--workdir={tmp_path / 'two'}"],
                          timeout=600, KERAS_BACKEND="jax",
                          XLA_FLAGS=os.environ.get("XLA_FLAGS", "")
                          + " --xla_force_host_platform_device_count=2")
    assert status == 0, out[-3000:]
    assert "[strategy] DataParallel over 2 devices: cpu:0, cpu:1" in out, out[-3000:]
    status, out = run_cli([*ARGS, f"--workdir={tmp_path / 'one'}"], timeout=600,
                          KERAS_BACKEND="jax")
    assert status == 0, out[-3000:]
    assert "[strategy]" not in out  # One device: nothing to distribute.
    # Each step's update is a mean over the global batch (256 images x 2 views) summed
    # in another order: terms = samples x steps, magnitude |w|.
    assert_close_checkpoints(tmp_path / "two", tmp_path / "one", STEPS, 256 * 2 * STEPS)
