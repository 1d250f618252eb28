"""Preemption: a run killed with SIGKILL (while training, or while writing a checkpoint)
and rerun with the same command ends with exactly the weights of an uninterrupted run."""

import os
import random

import numpy as np
import pytest

from _cli_runs import (TINY, assert_same_final_checkpoint, checkpoint_files, is_complete_npz,
                       latest_checkpoint, run_cli)
from supcon_tf.cli import checkpoint

# 3 epochs of 5 steps (1,437 training digits, batch 256), a checkpoint every 2 steps
# and at every epoch end; deterministic ops and data order.
PRETRAIN = TINY + ["--mode=pretrain", "--config.pretrain.epochs=3",
                   "--config.checkpoint_every_steps=2", "--config.deterministic=True"]
TOTAL_STEPS = 15


def test_sigkill_then_rerun_equals_uninterrupted_run(tmp_path):
    reference, interrupted = str(tmp_path / "reference"), str(tmp_path / "interrupted")
    status, out = run_cli(PRETRAIN + [f"--workdir={reference}"])
    assert status == 0, out

    kill_at = random.Random(os.getpid()).randint(3, TOTAL_STEPS - 2)
    status, out = run_cli(PRETRAIN + [f"--workdir={interrupted}"],
                          SUPCON_TF_FAULT=f"kill_at_step={kill_at}")
    assert status == -9, f"kill_at_step={kill_at}: expected SIGKILL, got {status}\n{out}"
    marker, _ = latest_checkpoint(interrupted)
    assert 0 < marker["step"] <= kill_at, (kill_at, marker)

    # The rerun is killed in the middle of its first checkpoint write...
    status, out = run_cli(PRETRAIN + [f"--workdir={interrupted}"],
                          SUPCON_TF_FAULT="kill_in_save=1")
    assert status == -9, out
    assert f"resuming from the checkpoint of step {marker['step']}" in out
    torn = [f for f in checkpoint_files(interrupted) if f.endswith(".npz")
            and not is_complete_npz(os.path.join(interrupted, "checkpoints", "pretrain", f))]
    assert torn, checkpoint_files(interrupted)  # The kill did land mid-write.
    assert latest_checkpoint(interrupted)[0]["step"] == marker["step"]

    # ...and the next rerun still resumes from the last complete one and finishes.
    status, out = run_cli(PRETRAIN + [f"--workdir={interrupted}"])
    assert status == 0, out
    assert f"resuming from the checkpoint of step {marker['step']}" in out

    assert_same_final_checkpoint(reference, interrupted, TOTAL_STEPS, f"kill_at_step={kill_at}")

    # A finished run rerun trains nothing.
    status, out = run_cli(PRETRAIN + [f"--workdir={interrupted}"])
    assert status == 0 and "already complete" in out, out


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
    ref_marker, ref_arrays = latest_checkpoint(reference)
    got_marker, got_arrays = latest_checkpoint(killed)
    assert ref_marker["step"] == got_marker["step"] == steps
    assert len(ref_arrays) == len(got_arrays)
    for i, (a, b) in enumerate(zip(ref_arrays, got_arrays)):
        np.testing.assert_array_equal(a, b, err_msg=f"variable {i} (kill_at_step={kill_at})")
    # The teacher's step counter and the 512 x 8 queue are among them.
    assert any(a.shape == () and a.dtype == np.int32 and a == steps for a in ref_arrays)
    queue = [a for a in ref_arrays if a.shape == (512, 8)]
    assert len(queue) == 1 and np.abs(queue[0]).sum() > 0
