"""The package as users install it: `python -m build` gives an sdist that carries the tests
and a wheel that carries the configs; the wheel, installed into a fresh venv away from this
checkout, runs `supcon-tf` from any directory to the checkout's result."""

import glob
import json
import os
import pathlib
import shutil
import site
import subprocess
import sys
import tarfile
import types
import zipfile

import pytest

import supcon_tf
from _cli_runs import ROOT, run_many
from supcon_tf.cli import config_files, schema
from tolerance import assert_close

ROOT = pathlib.Path(ROOT)
# What a build must not read from or write into: the checkout is copied without them.
_NOT_SOURCE = shutil.ignore_patterns(".git", "__pycache__", "*.py[cod]", "build", "dist",
                                     "*.egg-info", "runs", ".venv", ".pytest_cache")


def _checkout_files(*folders):
    """The checkout's files under `folders`, relative, as the build sees them."""
    return {p.relative_to(ROOT).as_posix() for folder in folders
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """`python -m build` (the sdist, then the wheel built from it) on a copy of the
    checkout, so that the build's egg-info and build/ never land in the checkout."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    out = tmp / "dist"
    # --no-isolation: this environment's setuptools, nothing downloaded.
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                           str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,), (wheel,) = glob.glob(str(out / "*.tar.gz")), glob.glob(str(out / "*.whl"))
    return types.SimpleNamespace(sdist=sdist, wheel=wheel, tmp=tmp)


def test_sdist_carries_the_package_configs_and_tests(dist):
    with tarfile.open(dist.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    expected = _checkout_files("supcon_tf", "configs", "tests", "tools", "docs") | {
        "setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "BUILD", "pytest.ini"}
    assert not expected - names, sorted(expected - names)


def test_wheel_carries_the_configs_once_and_the_package_data(dist):
    with zipfile.ZipFile(dist.wheel) as whl:
        names = set(whl.namelist())
        metadata = whl.read(f"supcon_tf-{supcon_tf.__version__}.dist-info/METADATA").decode()
    configs = {f"supcon_tf/{f}" for f in _checkout_files("configs")}
    assert {"supcon_tf/configs/__init__.py", "supcon_tf/configs/digits_supcon.py"} <= configs
    assert configs <= names, sorted(configs - names)
    assert _checkout_files("supcon_tf") <= names  # Every module and data file ("assets").
    # Only the package and its metadata: no top-level configs/, tests/ or tools/.
    assert {n.split("/")[0] for n in names} == {
        "supcon_tf", f"supcon_tf-{supcon_tf.__version__}.dist-info"}
    assert f"\nVersion: {supcon_tf.__version__}\n" in metadata
    assert pathlib.Path(dist.wheel).name == f"supcon_tf-{supcon_tf.__version__}-py3-none-any.whl"


def _fresh_venv(path, wheel):
    """A venv holding the wheel alone (pip --no-deps); the installed dependencies of this
    environment are reached through a .pth file of plain paths, so no .pth file of theirs
    (this checkout's editable install) runs there."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=120)
    python = path / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--no-deps", "--no-index", "--quiet", wheel],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (site_packages,) = path.glob("lib/python*/site-packages")
    outer = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE
                                      else [])
    (site_packages / "outer_site_packages.pth").write_text(
        "\n".join(p for p in outer if os.path.isdir(p)) + "\n")
    return python


def test_installed_wheel_runs_from_any_directory(dist):
    venv = dist.tmp / "venv"
    python = _fresh_venv(venv, dist.wheel)
    elsewhere, workdir = dist.tmp / "elsewhere", dist.tmp / "run"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="")
    config = f"{config_files.DEFAULT_CONFIG}:local"
    overrides = {"pretrain.epochs": 1, "linear.epochs": 1, "eval.plots": False}
    ((status, out),) = run_many(
        [[f"--config={config}", *(f"--config.{k}={v}" for k, v in overrides.items()),
          f"--workdir={workdir}"]],
        cwd=elsewhere, env=env, command=[str(venv / "bin" / "supcon-tf")])
    assert status == 0, out
    check = subprocess.run([str(python), str(ROOT / "tests" / "_installed_check.py"),
                            str(workdir / "export")], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    found = json.loads(check.stdout.strip().splitlines()[-1])

    # The wheel's package and configs, not this checkout's; one version everywhere.
    (site_packages,) = venv.resolve().glob("lib/python*/site-packages")
    assert os.path.realpath(found["package"]) == str(site_packages / "supcon_tf" / "__init__.py")
    assert found["config_dir"] == str(site_packages / "supcon_tf" / "configs")
    assert found["version"] == found["distribution_version"] == supcon_tf.__version__
    assert found["default_config"] == found["default_module"] == os.path.join(
        found["config_dir"], f"{config_files.DEFAULT_CONFIG}.py")
    assert found["configs"] == config_files.bundled_configs()  # Names and descriptions.

    # The checkout's config with the same overrides: the installed run used it.
    expected = config_files.load_config(config)
    for key, value in overrides.items():
        stage, leaf = key.split(".")
        expected[stage][leaf] = value
    recorded = json.loads((workdir / "config.json").read_text())
    assert recorded == json.loads(json.dumps(schema.resolve(expected)))
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert f"top-1 {metrics['linear_top1']:.4f}" in out
    # The export loads and reproduces the reported linear-evaluation accuracy.
    assert_close(found["accuracy"], metrics["linear_top1"], dtype="float32",
                 terms=found["count"])

    # The installed entry point lists every bundled config with its description.
    assert found["entry_point"] == "supcon_tf.main:run"
    for name, summary in config_files.bundled_configs().items():
        assert f"  {name}" in found["listing"] and summary in found["listing"]
    assert found["config_dir"] in found["listing"]


def test_star_import_gives_the_public_api():
    namespace = {}
    exec("from supcon_tf import *", namespace)  # Every name of __all__ is a string that resolves.
    assert all(isinstance(name, str) for name in supcon_tf.__all__)
    assert {"SupCon", "SupConMoCo", "SwAV", "Teacher", "export"} <= set(namespace)
