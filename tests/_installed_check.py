"""Run by tests/test_packaging.py with an installed wheel's Python, from a temporary
directory: prints, as JSON, where `supcon_tf` and its configs came from, its versions, the
accuracy of the export given as the first argument, and what the installed `supcon-tf`
entry point prints for `--list-configs` (in this process: TensorFlow loads once)."""

import contextlib
import importlib
import importlib.metadata
import io
import json
import sys

import supcon_tf  # First: the installed package, before any helper imports anything.
from supcon_tf.cli import config_files

from _export_helpers import digits_test_accuracy  # noqa: E402  (this script's folder)

default = importlib.import_module(f"supcon_tf.configs.{config_files.DEFAULT_CONFIG}")
accuracy, count = digits_test_accuracy(sys.argv[1])
(entry_point,) = importlib.metadata.entry_points(group="console_scripts", name="supcon-tf")
listing = io.StringIO()
sys.argv = ["supcon-tf", "--list-configs"]
with contextlib.redirect_stdout(listing), contextlib.suppress(SystemExit):
    entry_point.load()()
print(json.dumps({
    "package": supcon_tf.__file__,
    "version": supcon_tf.__version__,
    "distribution_version": importlib.metadata.version("supcon-tf"),
    "config_dir": str(config_files.config_dir()),
    "configs": config_files.bundled_configs(),
    "default_config": config_files.default_config_path(),
    "default_module": default.__file__,
    "accuracy": accuracy,
    "count": count,
    "entry_point": entry_point.value,
    "listing": listing.getvalue(),
}))
