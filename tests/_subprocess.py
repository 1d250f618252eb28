"""Runs test helper scripts in subprocesses: bounded in time, always cleaned up."""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script_env(**extra):
    """The current environment with the repository importable and TensorFlow quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KERAS_BACKEND"] = "tensorflow"
    env.update(extra)
    return env


def run_all(commands, timeout, envs=None):
    """Starts every command at once, waits up to `timeout` s, kills leftovers; returns outputs.

    Raises AssertionError with the output of any command that failed or timed out.
    """
    envs = envs or [script_env()] * len(commands)
    procs = []
    try:
        for command, env in zip(commands, envs):
            procs.append(subprocess.Popen(
                [sys.executable, *command], env=env, cwd=ROOT,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        deadline = time.monotonic() + timeout
        outputs = []
        for proc, command in zip(procs, commands):
            try:
                out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
                raise AssertionError(f"{command} timed out after {timeout} s:\n{out[-4000:]}")
            if proc.returncode != 0:
                raise AssertionError(f"{command} exited with {proc.returncode}:\n{out[-4000:]}")
            outputs.append(out)
        return outputs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
