"""The work directory: one run's config record, checkpoints, logs, metrics and model.

Layout:
  config.json              the resolved config the run was started with
  checkpoints/pretrain/    stage-1 checkpoints (see `supcon_tf.cli.checkpoint`)
  checkpoints/linear/      stage-2 checkpoints
  logs/                    TensorBoard event files (loss, learning rate, accuracies)
  metrics.json             final linear-evaluation top-1 / top-5
  export/                  the exported SavedModel (and `model.keras`)
  eval/                    evaluation report and pictures

A work directory belongs to one config: starting a run whose resolved config differs
from the recorded one is refused unless the caller asks to overwrite.
"""

import datetime
import json
import os

import tensorflow as tf

from supcon_tf.cli.errors import UsageError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"


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
    """Writes `data` as JSON atomically (temporary file, then rename)."""
    tmp = f"{file_path}.tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tf.io.gfile.rename(tmp, file_path, overwrite=True)


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

    With `overwrite`, everything an earlier run left there is deleted first.
    """
    if overwrite and tf.io.gfile.exists(workdir):
        tf.io.gfile.rmtree(workdir)
    tf.io.gfile.makedirs(workdir)
    write_json(path(workdir, CONFIG_FILE), _normalized(config))
    return workdir
