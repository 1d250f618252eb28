"""Writes that leave either the old file or the new one, and failed writes said plainly.

`write_atomic` writes to a temporary name and renames it into place; if the write
fails (a full disk, a lost mount, an interrupt) the temporary file is removed and
the error is raised as `WriteFailedError`, naming the file. Paths go through
`tf.io.gfile`, so they may be local or on a bucket.
"""

import contextlib
import errno

import tensorflow as tf

from supcon_tf.cli.errors import WriteFailedError

# The errors a failed write raises: Python's and TensorFlow's file systems'.
WRITE_ERRORS = (OSError, tf.errors.OpError)


def reason(error):
    """The short cause of a file-system error: 'No space left on device', ..."""
    if isinstance(error, tf.errors.OpError):
        return error.message.rsplit("; ", 1)[-1]
    return error.strerror or str(error)


def remove_quietly(path):
    """Deletes `path` if it is there; a failure to do so is not an error of its own."""
    try:
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
    except WRITE_ERRORS:
        pass


@contextlib.contextmanager
def cleaned_up(partial, named):
    """Inside it, a failure removes the file `partial` and is raised as a
    `WriteFailedError` naming `named` (an interrupt is raised as it is, after the
    removal)."""
    try:
        yield
    except BaseException as error:
        remove_quietly(partial)
        if isinstance(error, WRITE_ERRORS) and not isinstance(error, WriteFailedError):
            raise WriteFailedError(named, reason(error)) from error
        raise


def write_atomic(path, data, tmp=None, fail_after=None):
    """Writes `data` (bytes or str) to `path` through the temporary file `tmp`
    (default `PATH.tmp`), renamed into place; raises `WriteFailedError` if it fails.

    `fail_after` is for the test faults only: write that many bytes, then fail as a
    full disk would.
    """
    tmp = tmp or f"{path}.tmp"
    with cleaned_up(tmp, path):
        with tf.io.gfile.GFile(tmp, "wb" if isinstance(data, bytes) else "w") as f:
            if fail_after is not None:
                f.write(data[:fail_after])
                f.flush()
                raise OSError(errno.ENOSPC, "No space left on device (a test fault, "
                              "SUPCON_TF_FAULT)", tmp)
            f.write(data)
        tf.io.gfile.rename(tmp, path, overwrite=True)
