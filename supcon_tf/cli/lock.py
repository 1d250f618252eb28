"""One run per work directory: a lock file naming its holder, renewed while it runs.

`WORKDIR/run.lock` holds JSON: host, pid, the process's start time, when the run
started and when the lock was last renewed (every `lease_s / 4` seconds, by a
thread). A second run on a locked work directory is refused with `WorkdirLocked`
(a `UsageError`: exit status 2) naming the holder. A lock is stale, and is taken
over, when its holder is gone: on the same host, its process no longer runs (a
SIGKILLed run's lock does not block the rerun); on another host, its lease has
expired (no renewal for `lease_s` seconds).

The file is created exclusively (on local disks with a hard link, which fails if it
exists; on other `tf.io.gfile` file systems, such as buckets, by a rename that
refuses to replace, then read back after a moment to confirm) and taken over through
a successor file that only one contender can create. With several workers only the
chief (`is_chief=True`) takes the lock; the others' `acquire` does nothing.

    with WorkdirLock(workdir, is_chief=True):
        ...  # train, checkpoint, export
"""

import datetime
import json
import os
import socket
import threading
import time
import uuid

import tensorflow as tf

from supcon_tf.cli import files
from supcon_tf.cli.errors import UsageError

LOCK_FILE = "run.lock"
LEASE_S = 120.0  # A holder on another host that has not renewed for this long is gone.
SETTLE_S = 1.0  # How long a lock created on a bucket is left before it is read back.


class WorkdirLocked(UsageError):
    """The work directory is in use by another run (named in the message)."""


def _local(path):
    return "://" not in str(path)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _process_start(pid):
    """The start time of process `pid` (clock ticks since boot, Linux), or None."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, ValueError):
        return None
    return None if fields[0] == "Z" else fields[19]  # state, then starttime (field 22)


def _running(pid, start):
    """Whether process `pid` (started at `start`, if known) still runs on this host."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # It exists, under another user.
    except (OSError, ValueError, TypeError):
        return False
    now = _process_start(pid)
    if os.path.isdir("/proc/self") and now is None:
        return False  # A zombie: killed, not yet reaped.
    return start is None or now is None or now == start  # Else the pid was reused.


def read_holder(workdir):
    """The lock's content (a dict) in `workdir`, None if there is none; raises
    `ValueError` if the file is not a lock this package wrote."""
    return _read(lock_path(workdir))


def _read(path):
    try:
        with tf.io.gfile.GFile(path) as f:
            text = f.read()
    except tf.errors.NotFoundError:
        return None
    holder = json.loads(text) if text.strip().startswith("{") else None
    if not isinstance(holder, dict) or "token" not in holder:
        raise ValueError(f"{path} is not a lock file of supcon-tf")
    return holder


def lock_path(workdir):
    return "/".join([str(workdir).rstrip("/"), LOCK_FILE])


def describe(holder, workdir):
    """'process 1234 on host h, started ... (lock file ..., renewed ...)'."""
    return (f"process {holder.get('pid')} on host {holder.get('host')!r}, started "
            f"{holder.get('started')} (lock file {lock_path(workdir)}, last renewed "
            f"{holder.get('renewed')})")


class WorkdirLock:
    """The lock of `workdir` for this process; see the module docstring.

    Args:
      workdir: the work directory (created if missing).
      is_chief: only the chief of a multi-worker run takes the lock.
      lease_s: how long a holder on another host may go without renewing.
      on_lost: called (from the renewing thread) if another run has taken the lock
        over; by default it interrupts the main thread (KeyboardInterrupt) so that this
        run stops writing. `lost` then holds the new holder.
    """

    def __init__(self, workdir, is_chief=True, lease_s=LEASE_S, on_lost=None):
        import _thread

        self.workdir = str(workdir)
        self.is_chief = bool(is_chief)
        self.lease_s = float(lease_s)
        self.on_lost = on_lost or _thread.interrupt_main
        self.path = lock_path(self.workdir)
        self.token = uuid.uuid4().hex
        self.held = False
        self.lost = None
        self._stop = threading.Event()
        self._thread = None
        self._record = {"host": socket.gethostname(), "pid": os.getpid(),
                        "process_start": _process_start(os.getpid()), "started": _now(),
                        "lease_s": self.lease_s, "token": self.token}

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    # ------------------------------------------------------------------ state

    def _text(self):
        return json.dumps(dict(self._record, renewed=_now(), renewed_unix=time.time()),
                          indent=1)

    def _stale(self, holder):
        if holder.get("host") == self._record["host"]:
            return not _running(holder.get("pid"), holder.get("process_start"))
        renewed = float(holder.get("renewed_unix", 0))
        return time.time() - renewed > float(holder.get("lease_s", self.lease_s))

    def _create(self, path):
        """Creates `path` holding this lock's record if it does not exist; whether it did."""
        staged = f"{path}.{self.token}.tmp"
        with files.cleaned_up(staged, path):
            with tf.io.gfile.GFile(staged, "w") as f:
                f.write(self._text())
            try:
                if _local(path):
                    os.link(staged, path)  # Atomic: fails if `path` exists.
                    return True
                tf.io.gfile.rename(staged, path, overwrite=False)
            except (FileExistsError, tf.errors.AlreadyExistsError):
                return False
            finally:
                files.remove_quietly(staged)
        time.sleep(SETTLE_S)  # A contender's rename in the same moment wins or loses now.
        try:
            return (_read(path) or {}).get("token") == self.token
        except ValueError:
            return False

    # ------------------------------------------------------------------- API

    def acquire(self):
        """Takes the lock (chief only); raises `WorkdirLocked` naming a live holder."""
        if not self.is_chief or self.held:
            return self
        tf.io.gfile.makedirs(self.workdir)
        for _ in range(5):
            if self._create(self.path):
                break
            try:
                holder = read_holder(self.workdir)
            except ValueError as e:
                raise WorkdirLocked(f"Work directory {self.workdir!r}: {e}; delete it if no "
                                    "run uses this directory.") from None
            if holder is None:
                continue  # Released in the meantime: try again.
            if not self._stale(holder):
                raise WorkdirLocked(
                    f"Work directory {self.workdir!r} is in use by another run: "
                    f"{describe(holder, self.workdir)}. Wait for it to finish or stop it, "
                    "or pass another --workdir.")
            if self._take_over(holder):
                break
            time.sleep(0.2)  # Another run is taking it over now: see who got it.
        else:
            raise WorkdirLocked(f"Work directory {self.workdir!r}: could not take its lock "
                                f"{self.path} (other runs keep taking it); try again.")
        self.held = True
        self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                        name="supcon-tf-lock")
        self._thread.start()
        return self

    def _take_over(self, stale):
        """Replaces the stale `holder`'s lock; whether this process got it. Only the
        contender that creates the successor file `run.lock.<stale token>` proceeds."""
        successor = f"{self.path}.{stale['token']}"
        if not self._create(successor):
            try:  # Left by a contender killed while taking over: as stale as it.
                if self._stale(_read(successor) or {}):
                    files.remove_quietly(successor)
            except ValueError:
                pass
            return False
        try:
            current = read_holder(self.workdir)
            if current is not None and current.get("token") != stale["token"]:
                return False  # Someone else's, taken over before this one started.
            files.write_atomic(self.path, self._text(), tmp=f"{self.path}.{self.token}.tmp")
            return True
        finally:
            files.remove_quietly(successor)

    def _renew_loop(self):
        while not self._stop.wait(self.lease_s / 4):
            try:
                holder = read_holder(self.workdir)
            except (ValueError, *files.WRITE_ERRORS):
                continue  # Unreadable for a moment: try at the next renewal.
            if holder is None:  # Deleted by hand: written again.
                try:
                    self._create(self.path)
                except files.WRITE_ERRORS:
                    pass
                continue
            if holder.get("token") != self.token:
                self.lost = holder
                self.held = False
                self.on_lost()
                return
            try:
                files.write_atomic(self.path, self._text(),
                                   tmp=f"{self.path}.{self.token}.tmp")
            except files.WRITE_ERRORS:
                pass  # A full disk: the next renewal tries again.

    def release(self):
        """Stops renewing and deletes the lock file if it is still this process's."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.held:
            try:
                holder = read_holder(self.workdir)
                if holder is not None and holder.get("token") == self.token:
                    tf.io.gfile.remove(self.path)
            except (ValueError, *files.WRITE_ERRORS):
                pass
        self.held = False
