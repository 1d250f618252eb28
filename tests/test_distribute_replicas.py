"""Global-batch correctness under tf.distribute: 1, 2 and 4 replicas agree with one device.

`tests/_replica_steps.py` runs in subprocesses (the CPU is split into 4 logical
devices before TensorFlow starts; one replica count per process) and trains
SupCon, SimCLR, SwAV (Sinkhorn-Knopp on the global batch, its queue used in the
second step) and the linear stage for two steps on the same global batches
with synchronized BatchNorm. Here the first step's gradients, every final weight
(BatchNorm moving statistics included), the loss / top-1 / top-5 that `fit`
reported, and those `evaluate` returns for the linear stage, are compared with
the run without a strategy.
"""

import keras
import numpy as np
import pytest

import tolerance
from _subprocess import run_all

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="tf.distribute runs on the TensorFlow backend")

CASES = ("supcon", "simclr", "swav", "linear")
REPLICAS = (1, 2, 4)
# float32 sums in a different order: |difference| <= 1e-5 * max(1, largest |value| of
# the tensor) (the SimCLR gradients reach ~9, so this is a relative 1e-5 there).
TOLERANCE = 1e-5
# SwAV (tests/tolerance.py): exp(scores / 0.05) multiplies the scores' rounding by 20,
# and each of the 3 Sinkhorn-Knopp iterations sums over 16 samples and 6 prototypes.
SWAV_TERMS = 20 * 3 * (16 + 6)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("replicas")
    run_all([["tests/_replica_steps.py", str(out), str(n), *CASES] for n in REPLICAS],
            timeout=400)
    return {name: dict(np.load(out / f"{name}.npz"))
            for name in [f"{c}_{r}" for c in CASES for r in ("none", "r1", "r2", "r4")]}


def assert_close(expected, actual, what):
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE * scale, err_msg=what)


@pytest.mark.parametrize("replicas", REPLICAS)
@pytest.mark.parametrize("case", CASES)
def test_step_matches_single_device(results, case, replicas):
    reference, run = results[f"{case}_none"], results[f"{case}_r{replicas}"]
    assert int(run["replicas"]) == replicas
    keys = [k for k in reference if k.split(":")[0] in ("grad", "weight", "metric")]
    assert set(keys) == {k for k in run if k.split(":")[0] in ("grad", "weight", "metric")}
    assert any(k.startswith("grad:") for k in keys)
    for key in keys:
        if case == "swav":
            tolerance.assert_close(run[key], reference[key], terms=SWAV_TERMS,
                                   err_msg=f"{case}, {replicas} replicas, {key}")
        else:
            assert_close(reference[key], run[key], f"{case}, {replicas} replicas, {key}")


def test_runs_are_not_trivial(results):
    """The comparison can fail: the step moved the weights and the metrics carry information."""
    for case in CASES:
        reference = results[f"{case}_none"]
        assert max(np.abs(v).max() for k, v in reference.items() if k.startswith("grad:")) > 1e-2
        loss = reference["metric:loss"]
        assert loss.shape == (2,) and loss[0] != loss[1]
    linear = results["linear_none"]
    assert 0 < linear["metric:top1"][-1] < linear["metric:top5"][-1] < 1
    assert 0 < linear["metric:eval_top1"] < linear["metric:eval_top5"] < 1
