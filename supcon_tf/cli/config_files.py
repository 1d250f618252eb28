"""Where config files are found: the default run's, and `--config` paths.

The experiment configs live in the repository's `configs/` folder, next to the
`supcon_tf` package, so the one installation that runs them (`pip install -e .`, a
source checkout, Bazel) finds them from the package's own location whatever the
current directory is. `--config=configs/x.py` is read relative to the current
directory first, as users expect, then relative to that folder, so the documented
commands also work from elsewhere. A wheel that ships the folder as package data
(`supcon_tf/configs`) is found too.
"""

import json
import pathlib

import ml_collections

DEFAULT_CONFIG = "digits_supcon.py"


def config_dirs():
    """Folders that may hold the experiment configs, most specific first."""
    package = pathlib.Path(__file__).resolve().parent.parent
    return [package.parent / "configs", package / "configs"]


def default_config_path():
    """The config `supcon-tf` runs without `--config`, or None if none is installed."""
    for folder in config_dirs():
        if (folder / DEFAULT_CONFIG).is_file():
            return str(folder / DEFAULT_CONFIG)
    return None


def find_config(path):
    """`path` (a config file, optionally `:arg`) as found on disk, else unchanged.

    Relative paths are tried against the current directory, then the config folders
    (with and without their leading `configs/`), so `--config=configs/x.py` works
    from any directory.
    """
    file_part, sep, arg = str(path).partition(":")
    candidate = pathlib.Path(file_part)
    if candidate.is_file() or candidate.is_absolute():
        return path
    for folder in config_dirs():
        for rel in (candidate, pathlib.Path(*candidate.parts[1:]) if
                    candidate.parts[:1] == ("configs",) else None):
            if rel is not None and str(rel) and (folder / rel).is_file():
                return str(folder / rel) + sep + arg
    return path


def available_configs():
    """Names of the bundled experiment configs (for error messages)."""
    for folder in config_dirs():
        if folder.is_dir():
            return sorted(p.name for p in folder.glob("*.py") if not p.name.startswith("_"))
    return []


def from_json(text):
    """A ConfigDict from a resolved config stored as JSON (tuples come back as lists)."""
    return ml_collections.ConfigDict(json.loads(text))
