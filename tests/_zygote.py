"""Starts the CLI tests' `supcon-tf` runs by forking one process that imported it already.

Importing TensorFlow, Keras and the package costs about 8 s of CPU, more than the tests'
tiny runs themselves, and the CLI tests start about 70 runs. A zygote (`python
tests/_zygote.py FD`, one per pytest worker) imports them once, without starting
TensorFlow's runtime, then forks once per run: the child takes the run's arguments,
environment, working directory and output pipe, leads its own session (as
`start_new_session=True` does), resets SIGINT to Python's Ctrl-C handler and runs
`python -m supcon_tf` in-process; everything read at run time (TF_CONFIG, XLA_FLAGS, the
test faults, devices) is read from the new environment. A supervisor between the zygote
and the child writes the child's pid and then its exit status to a pipe the test owns, so
`ForkedRun` answers like `subprocess.Popen` (pid, poll, wait, communicate, kill,
returncode, stdout).

What a fresh process still covers and this does not: the import of the package in a new
interpreter (tests/test_packaging.py, tests/test_readme.py and every run on another
backend, other installation or command spawn one). Set SUPCON_TF_TEST_SPAWN=1 to spawn
every run instead.
"""

import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPAWN_ENV = "SUPCON_TF_TEST_SPAWN"
# Read when the interpreter or TensorFlow starts, not at run time: a run that sets one of
# these to another value than the zygote's is spawned.
_IMPORT_TIME = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "TF_USE_LEGACY_KERAS", "PYTHONPATH",
                "PYTHONHASHSEED", "KERAS_HOME")
# Imported by a run's stages after start-up; importing them does not start the runtime.
_PRELOAD = ("supcon_tf.main", "supcon_tf.cli.stages", "supcon_tf.data", "supcon_tf.evaluation",
            "supcon_tf.export", "sklearn.datasets", "sklearn.linear_model", "sklearn.metrics",
            "sklearn.manifold")


# ------------------------------------------------------------------ the zygote process


def _serve(conn):
    import importlib

    for name in _PRELOAD:
        importlib.import_module(name)
    from tensorflow.python.eager import context

    assert not context.context()._initialized, "the zygote must not start TensorFlow"
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # Supervisors are reaped by the kernel.
    conn.sendall(b"ready\n")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 2)
        except OSError:
            return
        if not message:
            return  # The pytest worker is gone.
        request = json.loads(message)
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            conn.close()
            _supervise(request, *fds)  # Never returns in the supervisor.
        for fd in fds:
            os.close(fd)


def _supervise(request, output_fd, status_fd):
    """The supervisor: forks the run, writes "pid N" then "exit CODE" to `status_fd`."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        os.close(status_fd)
        _become_the_run(request, output_fd)
    os.close(output_fd)
    os.write(status_fd, f"pid {pid}\n".encode())
    _, status = os.waitpid(pid, 0)
    os.write(status_fd, f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
    os._exit(0)


def _become_the_run(request, output_fd):
    """The run: `python -m supcon_tf ARGS` in CWD with ENV, output on `output_fd`."""
    import runpy

    os.setsid()
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=False)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    sys.argv = [os.path.join(ROOT, "supcon_tf", "__main__.py"), *request["args"]]
    sys.path[0] = request["cwd"]  # As `python -m` puts the working directory first.
    runpy.run_module("supcon_tf", run_name="__main__", alter_sys=True)
    # Its SystemExit, or any exception, ends this process as it ends `python -m`: through
    # the interpreter's own shutdown (traceback, atexit handlers, flushes, exit status).
    sys.exit(0)


# ------------------------------------------------------------------ the pytest side


class ForkedRun:
    """A run started by the zygote, with the parts of `subprocess.Popen` the tests use."""

    def __init__(self, output, status):
        self.stdout = output
        self._status = status
        self._buffer = b""
        self._reader, self._chunks = None, []
        self.returncode = None
        self.pid = int(self._line(None).split()[1])

    def _line(self, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._status], [], [], left)[0]:
                return None
            chunk = os.read(self._status, 64)
            if not chunk:
                raise RuntimeError("the zygote's supervisor of a run died")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def poll(self):
        return self.wait(0) if self.returncode is None else self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                if timeout == 0:
                    return None
                raise subprocess.TimeoutExpired("supcon-tf (forked)", timeout)
            self.returncode = int(line.split()[1])
            os.close(self._status)
        return self.returncode

    def communicate(self, timeout=None):
        if self._reader is None:  # One reader for the output, whichever call started it.
            self._reader = threading.Thread(
                target=lambda: self._chunks.append(self.stdout.read()), daemon=True)
            self._reader.start()
        self._reader.join(timeout)
        if self._reader.is_alive():
            raise subprocess.TimeoutExpired("supcon-tf (forked)", timeout)
        self.wait()
        return "".join(self._chunks), None

    def send_signal(self, sig):
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The pytest worker's handle on its zygote process."""

    def __init__(self, env):
        self.env = env
        import tempfile

        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), str(theirs.fileno())], cwd=ROOT,
            env=env, pass_fds=[theirs.fileno()], start_new_session=True,
            stdout=self.log, stderr=self.log)
        theirs.close()
        self.conn = mine
        self.lock = threading.Lock()
        if self.conn.recv(16) != b"ready\n":
            self.log.seek(0)
            raise RuntimeError("the CLI tests' zygote did not start:\n"
                               + self.log.read().decode(errors="replace")[-4000:])

    def takes(self, env):
        return all(env.get(k) == self.env.get(k) for k in _IMPORT_TIME)

    def start(self, args, cwd, env):
        output_r, output_w = os.pipe()
        status_r, status_w = os.pipe()
        request = json.dumps(dict(args=list(args), cwd=os.fspath(cwd), env=dict(env)))
        with self.lock:
            socket.send_fds(self.conn, [request.encode()], [output_w, status_w])
        os.close(output_w)
        os.close(status_w)
        output = io.TextIOWrapper(io.FileIO(output_r, "r"), encoding="utf-8",
                                  errors="replace")
        return ForkedRun(output, status_r)

    def close(self):
        self.conn.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


_zygote = None


def launcher(env_of_zygote):
    """A `start(args, cwd, env)` for tools/cli_process.py: forks the zygote when it can,
    spawns otherwise (another backend, SUPCON_TF_TEST_SPAWN=1)."""

    def start(args, cwd, env, spawn):
        global _zygote
        if os.environ.get(SPAWN_ENV) == "1" or os.name != "posix":
            return spawn()
        if _zygote is None:
            import atexit

            _zygote = Zygote(env_of_zygote)
            atexit.register(_zygote.close)
        if not _zygote.takes(env):
            return spawn()
        return _zygote.start(args, cwd, env)

    return start


if __name__ == "__main__":
    _serve(socket.socket(fileno=int(sys.argv[1])))
