"""The core tests again on Keras' JAX backend (the backend is fixed per process)."""

import os
import pathlib
import subprocess
import sys

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
    "tests/test_metric_method.py": {},
    "tests/test_retrieval.py": {},
    "tests/test_tolerance.py": {},
    "tests/test_multicrop.py": {},
    "tests/test_simsiam_swav_losses.py": {},
}


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="already on JAX")
@pytest.mark.parametrize("module", sorted(CORE_TESTS))
def test_core_module_passes_on_jax(module):
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", **CORE_TESTS[module])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-m", "pytest", "-x", module],  # header: backend
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "backend jax" in result.stdout and " passed" in result.stdout
