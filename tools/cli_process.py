"""The `supcon-tf` command line in a subprocess, and what a run leaves in its work directory.

Shared by tools/preemption_trials.py and the CLI tests (tests/_cli_runs.py). The
checkpoint files are read here with NumPy alone, independently of
`supcon_tf.cli.checkpoint`, so that a check built on them does not share a bug of the
code it checks. A checkpoint counts as complete when its marker `ckpt-<step>.json` and
its data file `ckpt-<step>.npz` both exist (the library's commit rule).
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The fault variable read by supcon_tf/cli/checkpoint.py (not imported: no TensorFlow here).
FAULT_ENV = "SUPCON_TF_FAULT"
_MARKER = re.compile(r"^ckpt-(\d+)\.json$")


def cli_env(**extra):
    """The environment of a CLI subprocess: this checkout's package, CPU, quiet TF, no
    inherited fault; `extra` on top."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["KERAS_BACKEND"] = "tensorflow"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.pop(FAULT_ENV, None)
    env.update(extra)
    return env


def cli_command(args):
    return [sys.executable, "-m", "supcon_tf", *args]


def run_cli(args, timeout=300, cwd=ROOT, **env):
    """Runs `python -m supcon_tf ARGS`; returns (exit status, stdout + stderr).

    The run gets its own process group; on a timeout or an interrupt (Ctrl-C) that
    whole group is killed before the exception goes on, so nothing is left running.
    """
    proc = subprocess.Popen(cli_command(args), cwd=cwd, env=cli_env(**env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        kill_group(proc)
        raise
    return proc.returncode, out


def kill_group(proc):
    """SIGKILLs `proc`'s process group (it leads one: `start_new_session`) and reaps it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate()


def checkpoint_dir(workdir, stage="pretrain"):
    return os.path.join(workdir, "checkpoints", stage)


def checkpoint_files(workdir, stage="pretrain"):
    folder = checkpoint_dir(workdir, stage)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def stages(workdir):
    """The stages with a checkpoint folder in `workdir`, in training order."""
    found = checkpoint_files(workdir, stage="")  # the names under checkpoints/
    order = {"pretrain": 0, "linear": 1}
    return sorted(found, key=lambda s: (order.get(s, len(order)), s))


def complete_steps(workdir, stage="pretrain"):
    """Steps of the stage's complete checkpoints (marker and data file), oldest first."""
    folder = checkpoint_dir(workdir, stage)
    steps = []
    for name in checkpoint_files(workdir, stage):
        match = _MARKER.match(name)
        if match and os.path.exists(os.path.join(folder, name[:-5] + ".npz")):
            steps.append(int(match.group(1)))
    return sorted(steps)


def read_checkpoint(workdir, stage="pretrain", step=None):
    """(marker dict, [arrays]) of the stage's newest (or `step`'s) complete checkpoint,
    or (None, None) if it has none."""
    steps = complete_steps(workdir, stage)
    if not steps:
        return None, None
    step = steps[-1] if step is None else step
    base = os.path.join(checkpoint_dir(workdir, stage), f"ckpt-{step:09d}")
    with open(base + ".json") as f:
        marker = json.load(f)
    with open(base + ".npz", "rb") as f:
        data = np.load(io.BytesIO(f.read()))
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    return marker, arrays


def latest_checkpoint(workdir, stage="pretrain"):
    """(marker dict, [arrays]) of the newest complete checkpoint of a stage (must exist)."""
    marker, arrays = read_checkpoint(workdir, stage)
    if marker is None:
        raise FileNotFoundError(f"no complete checkpoint in {checkpoint_dir(workdir, stage)}")
    return marker, arrays


def is_complete_npz(path):
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except zipfile.BadZipFile:
        return False


def torn_files(workdir, stage="pretrain"):
    """Data files of the stage that are not a readable archive (a write cut short)."""
    folder = checkpoint_dir(workdir, stage)
    return [f for f in checkpoint_files(workdir, stage) if f.endswith(".npz")
            and not is_complete_npz(os.path.join(folder, f))]
