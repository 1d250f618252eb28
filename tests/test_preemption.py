"""The checkpoint format's commit rule and the test faults' parsing.

Kill-and-resume through the CLI (SIGKILL mid-step and mid-save, rerun, bit-equal final
weights, a finished run trains nothing) is tests/test_preemption_trials.py, through
tools/preemption_trials.py."""

import numpy as np
import pytest

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
