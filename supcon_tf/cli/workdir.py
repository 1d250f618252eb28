"""The work directory: one run's config record, checkpoints, logs, metrics and model.

Layout:
  config.json              the resolved config the run was started with
  checkpoints/pretrain/    stage-1 checkpoints (see `supcon_tf.cli.checkpoint`)
  checkpoints/linear/      stage-2 checkpoints
  logs/                    TensorBoard event files (loss, learning rate, accuracies)
  metrics.json             final linear-evaluation top-1 / top-5
  stage2/<tag>/            fine-tuning and transfer stages (see `supcon_tf.cli.finetune`)
  export/                  the exported SavedModel (and `model.keras`)
  eval/                    evaluation report and pictures
  run.lock                 the running run's lock (see `supcon_tf.cli.lock`)

A work directory belongs to one config: starting a run whose resolved config differs
from the recorded one is refused unless the caller asks to overwrite. Overwriting
deletes a run's own entries (the names above) and only in a run's work directory
(a config.json the package wrote, nothing but run entries); a folder that holds
anything else is never deleted from, and a new run is not started in it.
"""

import datetime
import json
import os
import re
import uuid

import tensorflow as tf

from supcon_tf.cli import files
from supcon_tf.cli.errors import UsageError
from supcon_tf.cli.lock import LOCK_FILE

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
# The entries a run makes, and the temporary names of their writes (a file's `.tmp`,
# the export's staging folder `.export.*`, the lock's and the write probe's).
RUN_ENTRIES = (CONFIG_FILE, METRICS_FILE, "checkpoints", "logs", "eval", "export", "stage2",
               LOCK_FILE)
_RUN_TEMPORARY = re.compile(
    r"^(config\.json|metrics\.json)\.tmp$|^\.export\.|^run\.lock\.|^\.supcon-tf-probe-")


def default_workdir(root="runs"):
    """`./runs/<UTC timestamp>`: a new folder for a run started without `--workdir`."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return os.path.join(root, stamp)


def path(workdir, *parts):
    return "/".join([str(workdir).rstrip("/"), *parts])


def check_directory(workdir):
    """Returns `workdir`; raises `UsageError` if it exists and is not a directory."""
    if tf.io.gfile.exists(workdir) and not tf.io.gfile.isdir(workdir):
        raise UsageError(f"--workdir={workdir!r} is an existing file, not a directory; pass "
                         "a new or existing directory (a run's work directory).")
    return workdir


def stored_config(workdir):
    """The resolved config recorded in `workdir` as a dict, or None."""
    config_path = path(workdir, CONFIG_FILE)
    if not tf.io.gfile.exists(config_path):
        return None
    with tf.io.gfile.GFile(config_path) as f:
        return json.load(f)


def _normalized(config):
    return json.loads(json.dumps(config, sort_keys=True))


def _differences(old, new, prefix=""):
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def write_json(file_path, data):
    """Writes `data` as JSON atomically (temporary file, then rename); raises
    `WriteFailedError` if that fails."""
    files.write_atomic(file_path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _entries(workdir):
    """The names in `workdir` (none if it does not exist), without trailing slashes."""
    if not tf.io.gfile.isdir(workdir):
        return []
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(workdir))


def _shown(names, limit=5):
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_claim(workdir, overwrite, is_run):
    """Raises `UsageError` unless this run may use `workdir`.

    `is_run`: whether its config.json is a run record this package wrote. A folder
    that is empty (its lock aside) or holds a run is fine; with `overwrite` it must be
    a run's work directory and hold nothing but a run's entries, so that deleting
    them deletes nothing else. A folder of other files is never used.
    """
    names = [n for n in _entries(workdir) if not n.startswith(LOCK_FILE)]
    if not names:
        return
    foreign = [n for n in names if n not in RUN_ENTRIES and not _RUN_TEMPORARY.match(n)]
    if overwrite and (foreign or not is_run):
        what = ("holds files that are not a run's" if is_run else "is not a run's work "
                "directory") + f" ({_shown(foreign or names)})"
        raise UsageError(
            f"--overwrite deletes only a run's own files, and {workdir!r} {what}; nothing "
            "was deleted. Pass a new --workdir for this run (e.g. "
            f"--workdir={path(workdir, 'run')}).")
    if foreign and not is_run:
        raise UsageError(
            f"Work directory {workdir!r} is not empty and holds no run ({_shown(foreign)}); "
            f"pass a new or empty --workdir (e.g. --workdir={path(workdir, 'run')}).")


def check_writable(workdir):
    """Raises `UsageError` naming the path and the reason if `workdir` cannot be created
    or written; leaves nothing behind (folders it had to create are removed again)."""
    created, folder = [], str(workdir).rstrip("/")
    try:
        while folder and not tf.io.gfile.exists(folder):
            created.append(folder)
            parent = os.path.dirname(folder)
            folder = parent if parent != folder else ""
    except files.WRITE_ERRORS:
        pass
    probe = path(workdir, f".supcon-tf-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tf.io.gfile.makedirs(workdir)
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("supcon-tf checks that the work directory is writable\n")
        tf.io.gfile.remove(probe)
    except files.WRITE_ERRORS as error:
        files.remove_quietly(probe)
        raise UsageError(
            f"Work directory {workdir!r} cannot be {'created' if created else 'written'}: "
            f"{files.reason(error)}. Pass a --workdir in a folder you can write to.") from None
    finally:
        for folder in created:  # Deepest first: only the folders this check made.
            _remove_if_empty(folder)
    return workdir


def _remove_if_empty(folder):
    try:
        if tf.io.gfile.isdir(folder) and not tf.io.gfile.listdir(folder):
            tf.io.gfile.rmtree(folder)
    except files.WRITE_ERRORS:
        pass


def clear_run(workdir):
    """Deletes a run's entries (and leftover temporaries) from `workdir`, its lock aside;
    `check_claim(..., overwrite=True)` has made sure that is all it holds."""
    for name in _entries(workdir):
        if name.startswith(LOCK_FILE) or not (name in RUN_ENTRIES or _RUN_TEMPORARY.match(name)):
            continue
        target = path(workdir, name)
        if tf.io.gfile.isdir(target):
            tf.io.gfile.rmtree(target)
        else:
            tf.io.gfile.remove(target)


def check_same_config(workdir, stored, config, hint=None):
    """Raises `UsageError` if `stored` (the workdir's record) differs from `config`."""
    if stored is None or _normalized(stored) == _normalized(config):
        return
    diff = _differences(_normalized(stored), _normalized(config))
    shown = "; ".join(diff[:6]) + ("; ..." if len(diff) > 6 else "")
    if hint is None:
        hint = (" Rerun with the same config to resume it, choose a new --workdir, or pass "
                "--overwrite to delete that run and start again.")
    raise UsageError(
        f"Work directory {workdir!r} holds a run of a different config ({shown}).{hint}")


def prepare(workdir, config, overwrite=False):
    """Claims `workdir` for `config` (a resolved dict) and records it in config.json.

    With `overwrite`, the entries an earlier run left there are deleted first (see
    `check_claim`, which must have passed).
    """
    if overwrite:
        clear_run(workdir)
    tf.io.gfile.makedirs(workdir)
    write_json(path(workdir, CONFIG_FILE), _normalized(config))
    return workdir
