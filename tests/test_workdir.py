"""The work directory: --overwrite deletes only a run, one run at a time (the lock),
and faults (an unwritable folder, a failed write, Ctrl-C) said plainly with nothing lost.

In process: the ownership rules, the lock, atomic writes and the messages' parts.
Through the command line (subprocesses): two concurrent runs on one work directory, and
a run that meets a full disk in a checkpoint, then Ctrl-C, then finishes.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from _cli_runs import TINY, checkpoint_files, latest_checkpoint, run_cli, run_many
from supcon_tf import main
from supcon_tf.cli import checkpoint, files, lock, schema, session
from supcon_tf.cli import workdir as wd
from supcon_tf.cli.errors import UsageError, WriteFailedError
from test_cli_errors import _digits_config, _settings


def _project(root):
    """A user's folder: a thesis and notes, nothing of a run."""
    (root / "thesis").mkdir(parents=True)
    (root / "thesis" / "chapter1.tex").write_text("\\chapter{One}")
    (root / "notes.txt").write_text("remember")
    return root


def _user_files_intact(root):
    assert (root / "thesis" / "chapter1.tex").read_text() == "\\chapter{One}"
    assert (root / "notes.txt").read_text() == "remember"


def _run_dir(root):
    """What a run leaves: a config.json the package wrote, checkpoints, logs, metrics,
    a temporary file of a killed write, a stale lock."""
    root.mkdir()
    (root / "config.json").write_text(json.dumps(schema.resolve(_digits_config())))
    for folder in ("checkpoints/pretrain", "logs", "export/variables", "eval"):
        (root / folder).mkdir(parents=True)
    (root / "checkpoints/pretrain/ckpt-000000002.npz").write_bytes(b"x")
    (root / "metrics.json").write_text("{}")
    (root / "metrics.json.tmp").write_text("{")
    (root / "run.lock").write_text("{}")
    return root


# --------------------------------------------------------------- in process: whose folder


@pytest.mark.parametrize("where", ["path", "dot"])
def test_overwrite_refuses_a_folder_of_user_files(tmp_path, monkeypatch, where):
    """`--workdir=<project> --overwrite` (and `--workdir=.` inside it) deletes nothing."""
    project = _project(tmp_path / "project")
    workdir = str(project)
    if where == "dot":
        monkeypatch.chdir(project)
        workdir = "."
    settings = _settings(tmp_path, mode="all", workdir=workdir)
    settings.overwrite = True
    with pytest.raises(UsageError) as info:
        session.prepare(settings, log=lambda _: None)
    message = str(info.value)
    assert "--overwrite deletes only a run's own files" in message
    assert "is not a run's work directory (notes.txt, thesis)" in message
    assert "nothing was deleted" in message and f"--workdir={workdir}/run" in message
    # Nor does a run start there without --overwrite.
    settings.overwrite = False
    with pytest.raises(UsageError, match="is not empty and holds no run"):
        session.prepare(settings, log=lambda _: None)
    _user_files_intact(project)
    assert sorted(os.listdir(project)) == ["notes.txt", "thesis"]


def test_overwrite_deletes_a_runs_entries_only(tmp_path):
    run = _run_dir(tmp_path / "run")
    assert session._holds_run(str(run))
    wd.check_claim(str(run), overwrite=True, is_run=True)
    wd.clear_run(str(run))
    assert os.listdir(run) == ["run.lock"]  # The folder stays; the lock is the lock's.
    # A run's folder with a user's file in it: resumed, but --overwrite deletes nothing.
    run = _run_dir(tmp_path / "run_and_notes")
    (run / "notes.txt").write_text("mine")
    wd.check_claim(str(run), overwrite=False, is_run=True)
    with pytest.raises(UsageError, match=r"holds files that are not a run's \(notes.txt\)"):
        wd.check_claim(str(run), overwrite=True, is_run=True)
    # A config.json that is not the package's: not a run.
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"name": "my-app", "version": 2}')
    assert not session._holds_run(str(other))
    with pytest.raises(UsageError, match=r"is not a run's work directory \(config.json\)"):
        wd.check_claim(str(other), overwrite=True, is_run=False)
    (other / "config.json").write_text("not json")
    assert not session._holds_run(str(other))
    # Empty folders and missing ones are free.
    (tmp_path / "empty").mkdir()
    for free in ("empty", "missing"):
        wd.check_claim(str(tmp_path / free), overwrite=True, is_run=False)


def test_prepare_refuses_an_unwritable_or_held_workdir_before_training(tmp_path):
    """(The command line turns these `UsageError`s into exit status 2, like every other.)"""
    with pytest.raises(UsageError, match=r"Work directory '/proc/nope' cannot be created: "
                                         "No such file or directory"):
        session.prepare(_settings(tmp_path, workdir="/proc/nope"), log=lambda _: None)
    held = lock.WorkdirLock(tmp_path / "held").acquire()  # As a running run holds it.
    try:
        with pytest.raises(lock.WorkdirLocked,
                           match=f"is in use by another run: process {os.getpid()} on host"):
            session.prepare(_settings(tmp_path, workdir=str(tmp_path / "held")),
                            log=lambda _: None)
        assert os.listdir(tmp_path / "held") == ["run.lock"]  # no config.json written
    finally:
        held.release()


def test_unwritable_workdir_is_found_first_and_nothing_is_left(tmp_path):
    with pytest.raises(UsageError, match=r"Work directory '/proc/nope' cannot be created: "
                                         "No such file or directory"):
        wd.check_writable("/proc/nope")
    assert wd.check_writable(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "b")
    assert os.listdir(tmp_path) == []  # The folders it made to try are gone again.


# --------------------------------------------------------------------- in process: lock


def _write_lock(folder, **fields):
    holder = dict(host="elsewhere", pid=1, process_start=None, started="2026-01-01 00:00:00 "
                  "UTC", renewed="2026-01-01 00:00:00 UTC", renewed_unix=time.time(),
                  lease_s=lock.LEASE_S, token="theirs")
    holder.update(fields)
    (folder / "run.lock").write_text(json.dumps(holder))


def test_lock_has_one_holder_and_names_it(tmp_path):
    held = lock.WorkdirLock(tmp_path / "w").acquire()
    holder = lock.read_holder(tmp_path / "w")
    assert holder["pid"] == os.getpid() and holder["token"] == held.token
    with pytest.raises(lock.WorkdirLocked) as info:
        lock.WorkdirLock(tmp_path / "w").acquire()
    assert f"is in use by another run: process {os.getpid()} on host " in str(info.value)
    assert f"started {holder['started']}" in str(info.value)
    assert isinstance(info.value, UsageError)  # exit status 2
    # A non-chief worker takes nothing (the chief holds the lock for the job).
    assert not lock.WorkdirLock(tmp_path / "w", is_chief=False).acquire().held
    held.release()
    assert os.listdir(tmp_path / "w") == []
    # Released twice, or with someone else's lock in place: their lock is not deleted.
    _write_lock(tmp_path / "w")
    held.release()
    assert lock.read_holder(tmp_path / "w")["token"] == "theirs"


def test_stale_locks_are_taken_over_live_ones_are_not(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    here = lock.WorkdirLock(folder)._record["host"]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    cases = [  # (the holder's fields, whether it is stale)
        (dict(host=here, pid=gone.pid), True),  # killed on this host (e.g. SIGKILL)
        (dict(host=here, pid=os.getpid(), process_start="1"), True),  # its pid reused
        (dict(host=here, pid=os.getpid(), renewed_unix=0), False),  # alive, not renewing
        (dict(), False),  # another host, renewed just now
        (dict(renewed_unix=time.time() - lock.LEASE_S - 1), True),  # its lease expired
    ]
    for fields, stale in cases:
        _write_lock(folder, **fields)
        contender = lock.WorkdirLock(folder)
        if stale:
            contender.acquire()
            assert lock.read_holder(folder)["token"] == contender.token, fields
            contender.release()
            assert os.listdir(folder) == [], fields  # no successor or temporary file left
        else:
            with pytest.raises(lock.WorkdirLocked, match="in use by another run"):
                contender.acquire()
            assert lock.read_holder(folder)["token"] == "theirs", fields
    # A contender killed while taking over left its successor file: cleared, then taken.
    _write_lock(folder, host=here, pid=gone.pid)
    _write_lock(folder, host=here, pid=gone.pid, token="killed-taker")
    os.rename(folder / "run.lock", folder / "run.lock.theirs")
    _write_lock(folder, host=here, pid=gone.pid)
    contender = lock.WorkdirLock(folder).acquire()
    assert lock.read_holder(folder)["token"] == contender.token
    contender.release()
    assert os.listdir(folder) == []
    (folder / "run.lock").write_text("something else")
    with pytest.raises(lock.WorkdirLocked, match="is not a lock file of supcon-tf"):
        lock.WorkdirLock(folder).acquire()


def test_lock_is_renewed_and_a_lost_lock_stops_the_run(tmp_path):
    lost = []
    held = lock.WorkdirLock(tmp_path, lease_s=0.4, on_lost=lambda: lost.append(1)).acquire()
    first = lock.read_holder(tmp_path)["renewed_unix"]
    time.sleep(0.35)
    assert lock.read_holder(tmp_path)["renewed_unix"] > first
    os.remove(tmp_path / "run.lock")  # Deleted by hand: the holder writes it again.
    time.sleep(0.35)
    assert lock.read_holder(tmp_path)["token"] == held.token and not lost
    deadline = time.time() + 5
    while not lost and time.time() < deadline:
        if lock.read_holder(tmp_path)["token"] != "theirs":  # (a renewal in flight wins)
            _write_lock(tmp_path)  # Taken over by another run (its lease had expired).
        time.sleep(0.05)
    assert lost == [1] and held.lost["token"] == "theirs" and not held.held
    held.release()
    assert lock.read_holder(tmp_path)["token"] == "theirs"


# ----------------------------------------------------------- in process: failed writes


def test_a_failed_checkpoint_write_leaves_the_previous_one_and_no_temporary(
        tmp_path, monkeypatch):
    from test_preemption import _Var

    root, tmp_path = tmp_path, tmp_path / "pretrain"
    ckpt = checkpoint.Checkpointer(str(tmp_path), keep=2)
    variables = [_Var([1.0, 2.0])]
    ckpt.save(1, variables)
    monkeypatch.setenv(checkpoint.FAULT_ENV, "write_error_in_save=2")
    with pytest.raises(WriteFailedError) as info:
        ckpt.save(2, variables)
    assert info.value.path == str(tmp_path / "ckpt-000000002.npz")
    assert "No space left on device" in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000001.json", "ckpt-000000001.npz"]
    # The marker's write failing (after the data file landed) removes the data file too.
    monkeypatch.delenv(checkpoint.FAULT_ENV)
    real = files.write_atomic

    def marker_fails(path, data, **kwargs):
        if path.endswith(".json"):
            return real(path, data, fail_after=3)
        return real(path, data, **kwargs)

    monkeypatch.setattr(files, "write_atomic", marker_fails)
    with pytest.raises(WriteFailedError, match=r"ckpt-000000003\.json failed"):
        ckpt.save(3, variables)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000001.json", "ckpt-000000001.npz"]
    assert ckpt.latest()["step"] == 1
    assert checkpoint.newest(str(root)) == str(tmp_path / "ckpt-000000001")


def test_resume_command_drops_overwrite_and_names_the_workdir(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["supcon_tf", "--config=c.py:local", "--overwrite",
                                      "--config.seed=3"])
    assert main.resume_command("runs/20260101-000000") == (
        "supcon-tf --config=c.py:local --config.seed=3 --workdir=runs/20260101-000000")
    monkeypatch.setattr(sys, "argv", ["supcon_tf", "--workdir=/a b"])
    assert main.resume_command("/a b") == "supcon-tf '--workdir=/a b'"


# ------------------------------------------------------------ subprocess: the command


def test_two_runs_at_once_on_one_workdir_exactly_one_trains(tmp_path):
    workdir = str(tmp_path / "w")
    args = TINY + ["--mode=pretrain", "--config.pretrain.epochs=3", f"--workdir={workdir}"]
    results = run_many([args, args])
    assert sorted(status for status, _ in results) == [0, 2], results
    (_, trained), (_, refused) = sorted(results)
    assert trained.count("[pretrain] epoch") == 3, trained
    error = [line for line in refused.splitlines() if line.startswith("supcon-tf: error:")]
    assert len(error) == 1 and "Traceback" not in refused, refused
    assert re.search(r"is in use by another run: process \d+ on host '[^']+', started ",
                     error[0]), error
    assert "[pretrain]" not in refused
    assert latest_checkpoint(workdir)[0]["step"] == 3 * 5
    assert "run.lock" not in os.listdir(workdir)  # Let go at the end.


def test_full_disk_in_a_checkpoint_then_ctrl_c_then_the_same_command_finishes(tmp_path):
    """A checkpoint write fails half way (an injected full disk): exit 4, one paragraph
    naming the file, the newest intact checkpoint and the command, no temporary file. The
    same command resumes from that checkpoint; Ctrl-C (SIGINT) there prints one line and
    exits 130; the same command again resumes and finishes."""
    workdir = str(tmp_path / "w")
    args = TINY + ["--mode=pretrain", "--config.pretrain.epochs=2",
                   "--config.checkpoint_every_steps=2", f"--workdir={workdir}"]
    command = "supcon-tf " + " ".join(args)
    folder = os.path.join(workdir, "checkpoints", "pretrain")

    status, out = run_cli(args, SUPCON_TF_FAULT="write_error_in_save=3")  # steps 2, 4, 5
    assert status == 4, out
    error = [line for line in out.splitlines() if line.startswith("supcon-tf: error:")]
    assert len(error) == 1 and "Traceback" not in out, out
    assert (f"Writing {folder}/ckpt-000000005.npz failed: No space left on device"
            in error[0]), error
    assert f"the newest intact checkpoint is {folder}/ckpt-000000004;" in error[0], error
    assert f"the same command resumes from it: {command}" in error[0], error
    assert checkpoint_files(workdir) == [f"ckpt-00000000{s}.{x}" for s in (2, 4)
                                         for x in ("json", "npz")]
    assert not [f for f in os.listdir(workdir) if f.endswith(".tmp") or "lock" in f]

    status, out = run_cli(args, SUPCON_TF_FAULT="sigint_at_step=7")
    assert status == 130, out
    assert "resuming from the checkpoint of step 4" in out
    lines = [line for line in out.splitlines() if line.startswith("supcon-tf:")]
    assert lines == [f"supcon-tf: interrupted at step 7/10 of pretrain; the newest intact "
                     f"checkpoint is {folder}/ckpt-000000006; the same command resumes from "
                     f"it: {command}"], out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out

    status, out = run_cli(args)
    assert status == 0 and "resuming from the checkpoint of step 6" in out, out
    assert latest_checkpoint(workdir)[0]["step"] == 10
    assert not [f for f in checkpoint_files(workdir) if f.endswith(".tmp")]
