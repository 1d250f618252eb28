"""Where config files are found: the bundled experiment configs, by name or by path.

The experiment configs are one folder, the repository's `configs/`, which setup.py
ships in the wheel as the package `supcon_tf.configs` (one copy, mapped, not
duplicated). `--config` takes a bundled name (`digits_supcon`, `cifar10_supcon:local`)
or a path: a relative path is read from the current directory first, then from the
bundled folder (with or without its leading `configs/`), so the documented
`--config=configs/x.py` works from any directory, installed or in a checkout.
"""

import ast
import importlib.util
import json
import os
import pathlib

import ml_collections

from supcon_tf.cli.errors import UsageError

DEFAULT_CONFIG = "digits_supcon"


def _config_dirs():
    """Where the bundled configs may be: in the package (an installed wheel), then the
    checkout's folder next to the package."""
    package = pathlib.Path(__file__).resolve().parent.parent
    return [package / "configs", package.parent / "configs"]


def config_dir():
    """The folder of the bundled configs: `supcon_tf/configs` in an installed wheel, the
    checkout's `configs/` next to the package otherwise; None if neither exists."""
    return next((folder for folder in _config_dirs() if folder.is_dir()), None)


def _bundled_file(candidate):
    """The bundled config that `candidate` (a name, `name.py` or `configs/name.py`) names,
    whether or not it exists; None without a bundled folder."""
    folder = config_dir()
    parts = candidate.parts
    if folder is None or not parts:
        return None
    rel = pathlib.Path(*parts[1:]) if parts[0] == "configs" and len(parts) > 1 else candidate
    return folder / (rel if rel.suffix == ".py" else rel.with_name(rel.name + ".py"))


def default_config_path():
    """The config `supcon-tf` runs without `--config`, or None if none is installed."""
    path = _bundled_file(pathlib.Path(DEFAULT_CONFIG))
    return str(path) if path is not None and path.is_file() else None


def find_config(path):
    """`path` (a bundled name or a config file, optionally `:arg`) as found on disk, else
    unchanged. A file under the current directory wins over a bundled name."""
    file_part, sep, arg = str(path).partition(":")
    candidate = pathlib.Path(file_part)
    if candidate.is_file() or candidate.is_absolute():
        return path
    bundled = _bundled_file(candidate)
    return str(bundled) + sep + arg if bundled is not None and bundled.is_file() else path


def load_config(spec):
    """The ConfigDict of config `spec` (a bundled name or a file, optionally `:arg`), as
    `--config=spec` loads it; UsageError if there is no such config."""
    path, sep, arg = find_config(spec).partition(":")
    if not os.path.isfile(path):
        raise UsageError(describe_missing(spec))
    module_spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if sep else module.get_config()


def _summary(path):
    """The first line of a config file's docstring, read without running the file."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except SyntaxError as e:
        return f"(does not parse: {e.msg}, line {e.lineno})"
    return doc.strip().splitlines()[0] if doc else ""


def bundled_configs():
    """{name: one-line description} of every bundled config, by name."""
    folder = config_dir()
    if folder is None:
        return {}
    return {p.stem: _summary(p) for p in sorted(folder.glob("*.py"))
            if not p.name.startswith("_")}


def listing():
    """`supcon-tf --list-configs`: every bundled config with its one-line description."""
    configs = bundled_configs()
    if not configs:
        return "No bundled configs installed (no configs folder next to the package)."
    width = max(map(len, configs))
    lines = [f"Bundled configs in {config_dir()} (--config=NAME, or NAME:local for a "
             f"seconds-long smoke run; default: {DEFAULT_CONFIG}):"]
    lines += [f"  {name:<{width}}  {summary}" for name, summary in configs.items()]
    return "\n".join(lines)


def describe_missing(path):
    """Why config `path` (None: the default) was not found: the paths tried, the folders
    searched and the bundled names."""
    if path is None:
        start = f"No --config given and the default config {DEFAULT_CONFIG!r} is not installed"
        candidate, tried, searched = pathlib.Path(DEFAULT_CONFIG), [], []
    else:
        candidate = pathlib.Path(str(path).partition(":")[0])
        start = f"Config file {str(candidate)!r} does not exist"
        tried, searched = [candidate.absolute()], []
    folder, notes = config_dir(), []
    if not candidate.is_absolute():  # Then looked for in the current directory and bundled.
        if path is not None:
            searched.append(f"the current directory {os.getcwd()}")
        if folder is not None:
            tried.append(_bundled_file(candidate))
            searched.append(f"the bundled configs folder {folder}")
        else:
            notes.append("no bundled configs are installed: neither "
                         + " nor ".join(map(str, _config_dirs())) + " exists")
    if searched:
        notes.insert(0, f"searched {', then '.join(searched)}")
    names = ", ".join(bundled_configs())
    return (start + (f": tried {' and '.join(map(str, tried))}" if tried else "")
            + (f" ({'; '.join(notes)})" if notes else "")
            + (f". Bundled configs (--config=NAME or NAME:local): {names}; `supcon-tf "
               "--list-configs` describes them." if names else "; pass --config=FILE."))


def from_json(text):
    """A ConfigDict from a resolved config stored as JSON (tuples come back as lists)."""
    return ml_collections.ConfigDict(json.loads(text))
