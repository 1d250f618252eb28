"""Atomic, numbered checkpoints of a run's variables, and the faults tests inject.

A checkpoint is two files in the checkpoint folder: `ckpt-<step>.npz` (every variable's
value, in order) and `ckpt-<step>.json` (the commit marker: step, epoch and whatever
the caller records). Each is written to a temporary name and renamed into place, the
marker last; a checkpoint counts only once its marker exists. So a kill at any moment
of a save leaves the previous checkpoint as the latest one, and older checkpoints are
deleted only after a newer one is complete. A save that fails (a full disk) removes
what it wrote and raises `WriteFailedError`, the previous checkpoint still the latest.
Files go through `tf.io.gfile`, so the work directory may be local or a bucket
(`gs://...`).

Saving variable values (model and optimizer, in the order the code builds them) rather
than an object graph keeps the format independent of how layers track sublayers.
"""

import io
import json
import os
import re
import signal

import numpy as np
import tensorflow as tf

from supcon_tf.cli import files

# Faults for the tests only: "kill_at_step=N" (SIGKILL after training step N),
# "kill_in_save=N" (SIGKILL in the middle of writing the N-th checkpoint this process
# saves), "sigint_at_step=N" (SIGINT, as Ctrl-C sends, after step N) or
# "write_error_in_save=N" (the N-th checkpoint's data file fails half written, as on a
# full disk), in every stage, or "STAGE:KIND=N" in that stage only (e.g.
# "linear:kill_in_save=1"), so that a run can be stopped in a later stage.
FAULT_ENV = "SUPCON_TF_FAULT"

_NAME = re.compile(r"^ckpt-(\d+)\.json$")


def fault(kind, stage=None):
    """The integer the test fault `kind` is set to in `$SUPCON_TF_FAULT` for `stage`
    (a "STAGE:kind" entry, else a plain "kind" one), else None."""
    found = {}
    for item in os.environ.get(FAULT_ENV, "").split(","):
        key, _, value = item.partition("=")
        found[key.strip()] = int(value) if value.strip() else None
    return found.get(f"{stage}:{kind}", found.get(kind))


def die():
    """SIGKILL this process: what a preempted machine does, with no cleanup at all."""
    os.kill(os.getpid(), signal.SIGKILL)


class NonFiniteWeightsError(FloatingPointError):
    """A variable holds NaN or inf at a checkpoint: training diverged; nothing is written."""

    def __init__(self, step, name):
        super().__init__(
            f"Training stopped at step {int(step)}: variable {name!r} holds NaN or infinite "
            "values, so no checkpoint of this step was written; the last checkpoint written "
            "is intact. Lower the learning rate or check the inputs.")


def newest(root):
    """The path (without suffix) of the newest complete checkpoint in any stage folder
    under `root` (`WORKDIR/checkpoints`), by the time its marker was written; or None."""
    found = []
    if tf.io.gfile.isdir(root):
        for stage in tf.io.gfile.listdir(root):
            checkpointer = Checkpointer(f"{str(root).rstrip('/')}/{stage.rstrip('/')}")
            steps = checkpointer.steps()
            if steps:
                marker = checkpointer._path(steps[-1], "json")
                found.append((tf.io.gfile.stat(marker).mtime_nsec, marker[:-len(".json")]))
    return max(found)[1] if found else None


class Checkpointer:
    """Saves and restores a fixed list of variables under `directory`.

    Args:
      directory: the checkpoint folder (created on the first save).
      keep: how many of the newest complete checkpoints to keep.
      write: False on the workers of a multi-worker run other than the chief: `save`
        checks the values like the chief's does and writes nothing (they all read the
        chief's checkpoints).
    """

    def __init__(self, directory, keep=2, write=True):
        self.directory = str(directory)
        self.keep = int(keep)
        self.write = bool(write)
        self._saves = 0

    def _path(self, step, suffix):
        return f"{self.directory}/ckpt-{step:09d}.{suffix}"

    def steps(self):
        """Steps of the complete checkpoints, oldest first."""
        if not tf.io.gfile.isdir(self.directory):
            return []
        found = []
        for name in tf.io.gfile.listdir(self.directory):
            match = _NAME.match(name)
            if match and tf.io.gfile.exists(self._path(int(match.group(1)), "npz")):
                found.append(int(match.group(1)))
        return sorted(found)

    def latest(self):
        """The marker (a dict with at least `step`) of the newest checkpoint, or None."""
        steps = self.steps()
        if not steps:
            return None
        with tf.io.gfile.GFile(self._path(steps[-1], "json")) as f:
            return json.load(f)

    def save(self, step, variables, **meta):
        """Writes the values of `variables` as the checkpoint of `step`.

        Raises `NonFiniteWeightsError` instead of writing weights that hold NaN or inf
        (a step with a finite loss can still diverge its update): a checkpoint on disk
        is always one training can continue from.
        """
        arrays = [np.asarray(v.numpy()) for v in variables]
        for variable, array in zip(variables, arrays):
            if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
                raise NonFiniteWeightsError(step, getattr(variable, "path", variable.name))
        marker = dict(meta, step=int(step), num_variables=len(arrays),
                      shapes=[list(a.shape) for a in arrays])
        if not self.write:
            return marker
        tf.io.gfile.makedirs(self.directory)
        buffer = io.BytesIO()
        np.savez(buffer, *arrays)
        data = buffer.getvalue()
        self._saves += 1
        stage = os.path.basename(self.directory.rstrip("/"))
        if fault("kill_in_save", stage) == self._saves:
            # A torn write where the data file lands and the marker never does.
            with tf.io.gfile.GFile(self._path(step, "npz"), "wb") as f:
                f.write(data[: len(data) // 2])
            die()
        fail = len(data) // 2 if fault("write_error_in_save", stage) == self._saves else None
        files.write_atomic(self._path(step, "npz"), data, fail_after=fail)
        with files.cleaned_up(self._path(step, "npz"), self._path(step, "json")):
            files.write_atomic(self._path(step, "json"), json.dumps(marker, indent=1).encode())
        for old in self.steps()[: -self.keep]:
            tf.io.gfile.remove(self._path(old, "json"))  # Marker first: never half-valid.
            tf.io.gfile.remove(self._path(old, "npz"))
        return marker

    def restore(self, variables, step=None):
        """Assigns the newest (or `step`'s) checkpoint to `variables`; returns its marker."""
        step = self.steps()[-1] if step is None else step
        with tf.io.gfile.GFile(self._path(step, "json")) as f:
            marker = json.load(f)
        with tf.io.gfile.GFile(self._path(step, "npz"), "rb") as f:
            arrays = np.load(io.BytesIO(f.read()))
            arrays = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        shapes = [tuple(v.shape) for v in variables]
        if len(arrays) != len(variables) or any(
                tuple(a.shape) != s for a, s in zip(arrays, shapes)):
            raise ValueError(
                f"Checkpoint {self._path(step, 'npz')} holds {len(arrays)} variables that "
                f"do not match the {len(variables)} of the model built from this config; "
                "was the workdir written by a different version or config?"
            )
        for variable, value in zip(variables, arrays):
            variable.assign(value)
        return marker
