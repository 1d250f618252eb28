"""The checkpoint format's commit rule and the test faults' parsing.

Kill-and-resume through the CLI (SIGKILL mid-step and mid-save, rerun, bit-equal final
weights, a finished run trains nothing) is tests/test_preemption_trials.py, through
tools/preemption_trials.py."""

import os
import random

import numpy as np
import pytest

from _cli_runs import assert_same_final_checkpoint, run_cli
from supcon_tf.cli import checkpoint


class _Var:
    """The two things a checkpoint needs of a variable: numpy() and assign()."""

    def __init__(self, value):
        self.value = np.asarray(value, np.float32)
        self.shape = self.value.shape

    def numpy(self):
        return self.value

    def assign(self, value):
        self.value = np.asarray(value)


def test_checkpointer_marker_is_the_commit_point(tmp_path):
    ckpt = checkpoint.Checkpointer(str(tmp_path), keep=2)
    variables = [_Var([1.0, 2.0]), _Var([[3.0]])]
    ckpt.save(1, variables, epoch=0)
    variables[0].assign([5.0, 6.0])
    ckpt.save(2, variables, epoch=0)
    # A data file without its marker (a save killed before the rename) does not count.
    (tmp_path / "ckpt-000000003.npz").write_bytes(b"torn")
    assert ckpt.steps() == [1, 2] and ckpt.latest()["step"] == 2
    restored = [_Var([0.0, 0.0]), _Var([[0.0]])]
    assert ckpt.restore(restored)["epoch"] == 0
    np.testing.assert_array_equal(restored[0].value, [5.0, 6.0])
    # Keeping 2: the third complete save deletes the first.
    ckpt.save(4, variables)
    assert ckpt.steps() == [2, 4]
    assert not (tmp_path / "ckpt-000000001.npz").exists()
    with pytest.raises(ValueError, match="do not match"):
        ckpt.restore([_Var([0.0, 0.0, 0.0]), _Var([[0.0]])])


def test_fault_parsing(monkeypatch):
    monkeypatch.setenv(checkpoint.FAULT_ENV, "kill_at_step=7, kill_in_save=2")
    assert checkpoint.fault("kill_at_step") == 7
    assert checkpoint.fault("kill_in_save") == 2
    # A stage-scoped fault applies in that stage only; a plain one in every stage.
    monkeypatch.setenv(checkpoint.FAULT_ENV, "linear:kill_at_step=3,kill_in_save=2")
    assert checkpoint.fault("kill_at_step", "linear") == 3
    assert checkpoint.fault("kill_at_step", "pretrain") is None
    assert checkpoint.fault("kill_at_step") is None
    assert checkpoint.fault("kill_in_save", "pretrain") == 2
    monkeypatch.delenv(checkpoint.FAULT_ENV)
    assert checkpoint.fault("kill_at_step") is None


def test_moco_resumes_teacher_and_queue(tmp_path):
    """MoCo killed mid-run and rerun ends with the uninterrupted run's weights, teacher
    copies, queue and pointers (all Keras variables, so all checkpointed; BYOL's teacher
    is the same `Teacher` state)."""
    steps = 10  # 2 epochs of 5 steps, a checkpoint every 2
    args = ["--config=configs/digits_moco.py:local", "--mode=pretrain",
            "--config.pretrain.epochs=2", "--config.checkpoint_every_steps=2",
            "--config.deterministic=True"]
    reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
    kill_at = random.Random(os.getpid()).randint(3, steps - 2)
    status, out = run_cli(args + [f"--workdir={reference}"])
    assert status == 0, out
    status, out = run_cli(args + [f"--workdir={killed}"],
                          SUPCON_TF_FAULT=f"kill_at_step={kill_at}")
    assert status == -9, out
    status, out = run_cli(args + [f"--workdir={killed}"])
    assert status == 0 and "resuming from the checkpoint of step" in out, out
    ref_arrays = assert_same_final_checkpoint(reference, killed, steps,
                                              f"kill_at_step={kill_at}")
    # The teacher's step counter and the 512 x 8 queue are among them.
    assert any(a.shape == () and a.dtype == np.int32 and a == steps for a in ref_arrays)
    queue = [a for a in ref_arrays if a.shape == (512, 8)]
    assert len(queue) == 1 and np.abs(queue[0]).sum() > 0
