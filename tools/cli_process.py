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
import socket
import subprocess
import sys
import threading
import time
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


_launcher = None  # set_launcher(): how the CLI tests start runs (tests/_zygote.py).


def set_launcher(launcher):
    """Starts this module's runs with `launcher(args, cwd, env, spawn)` (which calls
    `spawn()` for a plain subprocess when it cannot start the run itself)."""
    global _launcher
    _launcher = launcher


def start_cli(args, cwd, env):
    """`python -m supcon_tf ARGS` started in its own session with SIGINT at its default;
    a `subprocess.Popen` (or the launcher's like object) whose stdout holds the output."""
    def spawn():
        return subprocess.Popen(cli_command(args), cwd=cwd, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=interruptible)

    return spawn() if _launcher is None else _launcher(args, cwd, env, spawn)


def interruptible():
    """Run in the child before exec: SIGINT back to its default, so that Python installs
    its Ctrl-C handler even when this process was started with SIGINT ignored (a
    background job of a shell without job control, `nohup`), as a terminal's command is."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(args, timeout=300, cwd=ROOT, **env):
    """Runs `python -m supcon_tf ARGS`; returns (exit status, stdout + stderr).

    The run gets its own process group; on a timeout or an interrupt (Ctrl-C) that
    whole group is killed before the exception goes on, so nothing is left running.
    """
    proc = start_cli(args, cwd, cli_env(**env))
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        kill_group(proc)
        raise
    return proc.returncode, out


def free_ports(count):
    """`count` TCP ports on localhost that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cluster_configs(count):
    """The `TF_CONFIG` of each of `count` workers of a new localhost cluster."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(count)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(count)]


def run_workers(args, workers=2, timeout=600, cwd=ROOT, faults=None, tf_configs=None,
                per_worker=None, kill_on_error=True, **env):
    """Runs `python -m supcon_tf ARGS --strategy=multi_worker` as `workers` localhost
    workers of one cluster; returns [(exit status, output)] in worker order.

    `faults[i]`: the `$SUPCON_TF_FAULT` of worker i; `per_worker[i]`: more arguments of
    worker i; `env`: more variables for all. When a worker ends with an error
    or is killed, the others (which would wait on it in a collective) are killed too,
    as a cluster scheduler does, unless `kill_on_error` is False (every worker is expected
    to stop on its own: they are waited for); everything left at the timeout is killed.
    """
    tf_configs = tf_configs or cluster_configs(workers)
    procs = []
    try:
        for i, tf_config in enumerate(tf_configs):
            own = dict(env, TF_CONFIG=tf_config)
            if faults and faults[i]:
                own[FAULT_ENV] = faults[i]
            procs.append(start_cli([*args, *(per_worker[i] if per_worker else ()),
                                    "--strategy=multi_worker"], cwd, cli_env(**own)))
        readers = [_Reader(proc) for proc in procs]
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if kill_on_error and any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.2)
    finally:
        for proc in procs:
            kill_group(proc, read=False)  # The readers hold the output pipes.
    return [(proc.returncode, reader.text()) for proc, reader in zip(procs, readers)]


class _Reader:
    """Collects a process's output in a thread (so that a full pipe never blocks it)."""

    def __init__(self, proc):
        self.chunks = []
        self.thread = threading.Thread(target=lambda: self.chunks.extend(proc.stdout),
                                       daemon=True)
        self.thread.start()

    def text(self):
        self.thread.join(timeout=10)
        return "".join(self.chunks)


def kill_group(proc, read=True):
    """SIGKILLs `proc`'s process group (it leads one: `start_new_session`) and reaps it
    (reading the rest of its output unless `read` is False)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate() if read else proc.wait()


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
