"""Runs test helper scripts in subprocesses: bounded in time, always cleaned up."""

import os
import subprocess
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script_env(**extra):
    """The current environment with the repository importable and TensorFlow quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONFAULTHANDLER", "1")  # A crash prints every thread's Python stack.
    env["KERAS_BACKEND"] = "tensorflow"
    env.update(extra)
    return env


def run_all(commands, timeout, envs=None, crash_reruns=0):
    """Starts every command at once, waits up to `timeout` s, kills leftovers; returns outputs.

    Raises AssertionError with the output of any command that failed or timed out. A
    command killed by a signal (a crash inside the runtime, with the Python stacks that
    PYTHONFAULTHANDLER prints) is started again up to `crash_reruns` times, with a warning
    that carries the crash's output: for deterministic scripts whose results a rerun
    reproduces. An exit status, a timeout or a second crash still fails.
    """
    envs = envs or [script_env()] * len(commands)
    procs = []

    def start(command, env):
        procs.append(subprocess.Popen(
            [sys.executable, *command], env=env, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        return procs[-1]

    try:
        started = [start(command, env) for command, env in zip(commands, envs)]
        deadline = time.monotonic() + timeout
        outputs = []
        for proc, command, env in zip(started, commands, envs):
            for attempt in range(crash_reruns + 1):
                if attempt:
                    warnings.warn(f"{command[0]} died of signal {-proc.returncode}; started "
                                  f"again:\n{out[-4000:]}")
                    proc = start(command, env)
                try:
                    out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, _ = proc.communicate()
                    raise AssertionError(
                        f"{command} timed out after {timeout} s:\n{out[-4000:]}")
                if proc.returncode >= 0:
                    break
            if proc.returncode != 0:
                raise AssertionError(f"{command} exited with {proc.returncode}:\n{out[-4000:]}")
            outputs.append(out)
        return outputs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
