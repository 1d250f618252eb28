"""tools/preemption_trials.py: one short kill-and-resume trial through the tool, and the
comparison and checks that make it fail when a resumed run is not the uninterrupted one.

The trial (digits `:local`, pretrain 2 epochs of 5 steps, linear 1 epoch, a checkpoint
every 2 steps) is killed in the middle of a pretraining checkpoint write (the torn file
must not be resumed from) and at a random step of the linear stage (a stage-scoped fault;
the rerun must say pretraining is complete and resume the linear stage), then completes,
and a rerun of the finished run must train nothing. Five CLI runs in all.
"""

import contextlib
import io
import json
import os
import shutil
import signal
import sys
import types

import numpy as np
import pytest

from _cli_runs import ROOT, latest_checkpoint

sys.path.insert(0, os.path.join(ROOT, "tools"))
import preemption_trials as tool  # noqa: E402

ARGS = ["--config", "configs/digits_supcon.py:local", "--trials", "1", "--keep",
        "--rerun-finished", "--kills", "pretrain:save,linear:step", "--timeout", "300",
        "--config.pretrain.epochs=2", "--config.linear.epochs=1"]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """The tool's `main` in this process: its five CLI runs start as the CLI tests' do
    (forked from tests/_zygote.py, each its own process to kill), not after five
    TensorFlow imports. (Its runs from the command line are plain subprocesses.)"""
    root = tmp_path_factory.mktemp("trials")
    report = root / "BENCH.md"
    out, err = io.StringIO(), io.StringIO()
    sigterm = signal.getsignal(signal.SIGTERM)  # main() sets its own handler.
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = tool.main([*ARGS, "--workdir-root", str(root / "runs"),
                                "--append", str(report)])
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    return root / "runs", report, types.SimpleNamespace(
        returncode=status, stdout=out.getvalue(), stderr=err.getvalue())


def test_one_trial_through_the_tool(campaign):
    runs, report, proc = campaign
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trial = [line for line in proc.stdout.splitlines() if line.startswith("trial 1/1")]
    assert trial and trial[0].endswith(": equal"), proc.stdout
    assert "pretrain save of step" in trial[0] and "linear step" in trial[0], trial
    assert "; 4 runs," in trial[0]  # 2 killed, 1 completing, 1 rerun of the finished run
    assert "1/1 trials equal" in proc.stdout
    for stage, steps in (("pretrain", 10), ("linear", 5)):
        marker, arrays = latest_checkpoint(str(runs / "trial-01"), stage)
        assert marker["step"] == marker["optimizer_iterations"] == steps, marker
        assert len(arrays) == marker["num_variables"] > 0
    log = (runs / "trial-01.log").read_text()
    assert "[pretrain] already complete (10 steps)" in log
    text = report.read_text()
    assert "## Reliability: kill-and-resume trials" in text and "**1/1 trials equal**" in text
    assert "| 1 | pretrain save of step" in text


def _perturbed_copy(runs, name, edit):
    """A copy of the finished trial with `edit(marker, arrays)` applied to its final
    linear checkpoint."""
    bad = runs / name
    shutil.copytree(runs / "trial-01", bad)
    marker, arrays = latest_checkpoint(str(bad), "linear")
    arrays = [a.copy() for a in arrays]
    edit(marker, arrays)
    base = bad / "checkpoints" / "linear" / f"ckpt-{marker['step']:09d}"
    np.savez(str(base) + ".npz", *arrays)
    (base.with_suffix(".json")).write_text(json.dumps(marker))
    return bad


def test_comparison_reports_a_one_ulp_difference_and_step_counts(campaign):
    runs, _, proc = campaign
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reference = str(runs / "reference")
    assert tool.compare(reference, str(runs / "trial-01")) == []

    def one_ulp(marker, arrays):
        del marker
        flat = arrays[0].reshape(-1)
        flat[0] = np.nextafter(flat[0], np.float32(np.inf))

    diffs = tool.compare(reference, str(_perturbed_copy(runs, "ulp", one_ulp)))
    assert len(diffs) == 1 and diffs[0].startswith("linear variable 0 ") \
        and "1 of" in diffs[0], diffs

    def iterations(marker, arrays):
        del arrays
        marker["optimizer_iterations"] += 1

    diffs = tool.compare(reference, str(_perturbed_copy(runs, "iterations", iterations)))
    assert diffs == ["linear optimizer_iterations: 6 vs 5"], diffs


def test_a_different_trial_fails_the_campaign(campaign, tmp_path, monkeypatch, capsys):
    """The tool's verdict and exit status when a trial's run is not the reference's: the
    reference is the kept one, the trial a run whose linear weights differ by one ulp."""
    runs, _, proc = campaign
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def one_ulp(marker, arrays):
        del marker
        arrays[-1].reshape(-1)[0] += np.float32(1.0)

    different = _perturbed_copy(runs, "different", one_ulp)

    def fake_reference(args, extra, workdir, log_path, title, env=None):
        shutil.copytree(runs / "reference", workdir)
        return 0, ""

    monkeypatch.setattr(tool, "run_logged", fake_reference)
    monkeypatch.setattr(tool, "trial", lambda args, extra, layout, ref, workdir, *a: (
        ["none"], 1, tool.compare(ref, str(different))))
    status = tool.main(["--config", "configs/digits_supcon.py:local", "--trials", "2",
                        "--workdir-root", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "0/2 trials equal" in out and out.count(": DIFFERENT: linear variable") == 2, out


def test_resume_checks_catch_a_wrong_resume_point():
    class Layout:
        stages = ["pretrain", "linear"]
        total = {"pretrain": 10, "linear": 5}

    done = {"pretrain": 10, "linear": 4}
    good = ("[pretrain] already complete (10 steps); nothing to train.\n"
            "[linear] resuming from the checkpoint of step 4 (epoch 1).\n")
    assert tool.check_resume(good, Layout, done) == []
    torn = good.replace("step 4 ", "step 5 ")  # resumed from the torn save of step 5
    assert len(tool.check_resume(torn, Layout, done)) == 1
    assert tool.check_resume(good, Layout, {"pretrain": 6, "linear": 0}) == [
        "pretrain: expected to resume from step 6, printed no resume line",
        "linear had no complete checkpoint but the run resumed"]


def test_arguments_that_would_break_bit_equality_are_refused():
    with pytest.raises(SystemExit):
        tool.parse_args(["--config", "c.py", "--config.deterministic=False"])
    with pytest.raises(SystemExit):
        tool.parse_args(["--config", "c.py", "--workdir=/tmp/x"])
    with pytest.raises(SystemExit):
        tool.parse_args(["--config", "c.py", "--kills", "pretrain:explode"])
