"""Runs the `supcon-tf` command line in subprocesses for the CLI tests (bounded, cleaned up)."""

import io
import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The smallest useful run: the digits smoke config, one epoch per stage, no pictures.
TINY = ["--config=configs/digits_supcon.py:local", "--config.pretrain.epochs=1",
        "--config.linear.epochs=1", "--config.eval.plots=False"]


def cli_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["KERAS_BACKEND"] = "tensorflow"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.pop("SUPCON_TF_FAULT", None)
    env.update(extra)
    return env


def _command(args):
    return [sys.executable, "-m", "supcon_tf", *args]


def run_cli(args, timeout=300, cwd=ROOT, **env):
    """Runs `python -m supcon_tf ARGS`; returns (exit status, stdout + stderr)."""
    proc = subprocess.run(_command(args), cwd=cwd, env=cli_env(**env), timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc.returncode, proc.stdout


def run_many(arg_lists, timeout=300, cwd=ROOT):
    """Starts every command at once (they mostly wait on imports); [(status, output)]."""
    procs = [subprocess.Popen(_command(a), cwd=cwd, env=cli_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for a in arg_lists]
    deadline = time.monotonic() + timeout
    results = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((proc.returncode, out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def checkpoint_files(workdir, stage="pretrain"):
    folder = os.path.join(workdir, "checkpoints", stage)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def latest_checkpoint(workdir, stage="pretrain"):
    """(marker dict, [arrays]) of the newest complete checkpoint of a stage."""
    folder = os.path.join(workdir, "checkpoints", stage)
    markers = sorted(f for f in os.listdir(folder) if f.endswith(".json"))
    with open(os.path.join(folder, markers[-1])) as f:
        marker = json.load(f)
    with open(os.path.join(folder, markers[-1][:-5] + ".npz"), "rb") as f:
        data = np.load(io.BytesIO(f.read()))
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    return marker, arrays


def assert_same_final_checkpoint(reference, resumed, total_steps, what=""):
    """Both runs' newest checkpoints are at `total_steps` with equal arrays; returns the
    reference's arrays."""
    ref_marker, ref_arrays = latest_checkpoint(reference)
    got_marker, got_arrays = latest_checkpoint(resumed)
    assert ref_marker["step"] == got_marker["step"] == total_steps
    # Every step applied exactly once: the optimizer counted as many updates in both runs.
    assert ref_marker["optimizer_iterations"] == got_marker["optimizer_iterations"] == total_steps
    assert len(ref_arrays) == len(got_arrays)
    for i, (a, b) in enumerate(zip(ref_arrays, got_arrays)):
        np.testing.assert_array_equal(a, b, err_msg=f"variable {i} ({what})")
    return ref_arrays


def is_complete_npz(path):
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except zipfile.BadZipFile:
        return False
