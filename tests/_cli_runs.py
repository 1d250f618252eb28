"""Runs the `supcon-tf` command line in subprocesses for the CLI tests (bounded, cleaned up).

The single-run helpers live in tools/cli_process.py, shared with
tools/preemption_trials.py; this module adds what only the tests need.
"""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import cli_process  # noqa: E402
from cli_process import (  # noqa: E402,F401  (re-exported for the tests)
    checkpoint_files, cli_command, cli_env, free_ports, is_complete_npz, latest_checkpoint,
    run_cli, run_workers, start_cli, torn_files)

import _zygote  # noqa: E402

# The tests' runs fork a process that imported the package already (tests/_zygote.py).
cli_process.set_launcher(_zygote.launcher(cli_env()))

# The smallest useful run: the digits smoke config, one epoch per stage, no pictures.
TINY = ["--config=configs/digits_supcon.py:local", "--config.pretrain.epochs=1",
        "--config.linear.epochs=1", "--config.eval.plots=False"]


def run_many(arg_lists, timeout=300, cwd=ROOT, command=None, env=None):
    """Starts every command at once (they mostly wait on imports); [(status, output)].

    `command` (default `python -m supcon_tf`) and `env` (default `cli_env()`) run another
    installation of the command line.
    """
    procs = [start_cli(a, cwd, cli_env() if env is None else env) if command is None else
             subprocess.Popen([*command, *a], cwd=cwd, env=cli_env() if env is None else env,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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


def assert_same_final_checkpoint(reference, resumed, total_steps, what=""):
    """Both runs finished at `total_steps` of pretraining with bit-equal final checkpoints
    (tools/preemption_trials.py's comparison); returns the reference's arrays."""
    from preemption_trials import compare

    marker, arrays = latest_checkpoint(reference)
    assert marker["step"] == marker["optimizer_iterations"] == total_steps, marker
    diffs = compare(reference, resumed)
    assert not diffs, f"{what}: " + "; ".join(diffs)
    return arrays


def assert_close_checkpoints(run, reference, steps, terms):
    """Both runs' final pretraining checkpoints are of step `steps` and hold the same
    variables: integers (step counters, seed states, queue pointers) exactly, floats
    within the float32 bound of `terms` (tests/tolerance.py); returns the run's arrays."""
    import numpy as np

    from tolerance import assert_close

    marker, expected = latest_checkpoint(reference)
    got_marker, got = latest_checkpoint(run)
    assert got_marker["step"] == marker["step"] == steps
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected)):
        if b.dtype.kind != "f":
            np.testing.assert_array_equal(a, b, err_msg=f"variable {i}")
        else:
            assert_close(a, b, dtype="float32", terms=terms, err_msg=f"variable {i}")
    return got
