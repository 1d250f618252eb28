"""The core tests again on Keras' JAX backend (the backend is fixed per process)."""

import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORE_TESTS = {
    # module: extra environment
    "tests/test_losses.py": {"JAX_ENABLE_X64": "1"},  # float64 reference checks
    "tests/test_encoders_heads.py": {},
    "tests/test_methods.py": {},
    "tests/test_lars.py": {},
    "tests/test_schedules.py": {},
    "tests/test_precision.py": {},
    "tests/test_probe.py": {},
    "tests/test_knn.py": {},
    "tests/test_momentum_methods.py": {},
    "tests/test_metric_losses.py": {"JAX_ENABLE_X64": "1"},
    "tests/test_clip_losses.py": {"JAX_ENABLE_X64": "1"},
    "tests/test_cpc.py": {"JAX_ENABLE_X64": "1"},
    "tests/test_metric_method.py": {},
    "tests/test_retrieval.py": {},
    "tests/test_tolerance.py": {},
    "tests/test_multicrop.py": {},
    "tests/test_simsiam_swav_losses.py": {},
    "tests/test_redundancy_losses.py": {},
    "tests/test_nnclr_loss.py": {},
    "tests/test_dino.py": {},
    "tests/test_text.py": {},
    "tests/test_nce_loss.py": {"JAX_ENABLE_X64": "1"},
}


CHUNK = 6  # Modules per JAX process: each process starts JAX and Keras once.


def _groups():
    """Modules grouped by their extra environment, in chunks of CHUNK: one JAX process per
    group (started once, not once per module; small enough to finish within its timeout)."""
    by_env = {}
    for module, extra in sorted(CORE_TESTS.items()):
        by_env.setdefault(tuple(sorted(extra.items())), []).append(module)
    groups = {}
    for extra, modules in by_env.items():
        for i in range(0, len(modules), CHUNK):
            groups[(extra, i // CHUNK)] = modules[i:i + CHUNK]
    return groups


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="already on JAX")
@pytest.mark.parametrize("group", sorted(_groups()), ids=lambda g: (
    ",".join(map("=".join, g[0])) or "default") + f"-{g[1]}")
def test_core_modules_pass_on_jax(group, tmp_path):
    pytest.importorskip("jax")
    extra = group[0]
    modules = _groups()[group]
    env = dict(os.environ, KERAS_BACKEND="jax", **dict(extra))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    report = tmp_path / "report.xml"
    result = subprocess.run([sys.executable, "-m", "pytest", f"--junitxml={report}", *modules],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    output = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    assert "backend jax" in result.stdout, output  # The header: these ran on JAX.
    ran = {m: 0 for m in modules}
    for case in ET.parse(report).getroot().iter("testcase"):
        path = "tests/" + case.get("classname").split(".")[-1] + ".py"
        if path in ran and case.find("skipped") is None:
            ran[path] += 1
    assert all(ran.values()), f"modules that ran no test on JAX: {ran}"
