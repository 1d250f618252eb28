"""Two MultiWorkerMirroredStrategy workers on localhost agree with one process.

Each worker is a subprocess (`tests/_multi_worker.py`) with its own TF_CONFIG on
free ports chosen now; both are bounded in time and always killed at the end.
Losses and the weights after three LARS steps agree within tests/tolerance.py's bound
(float32 sums over the global batch in another order, compounded over the steps).
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from _cli_runs import free_ports
from _multi_worker import GLOBAL_BATCH, STEPS, train
from _subprocess import run_all, script_env
from loss_reference import loss_terms
from tolerance import assert_close

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="tf.distribute runs on the TensorFlow backend")


def test_two_workers_match_single_process(tmp_path):
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    envs = [script_env(TF_CONFIG=json.dumps({"cluster": cluster,
                                             "task": {"type": "worker", "index": i}}))
            for i in range(2)]
    outs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    run_all([["tests/_multi_worker.py", str(out)] for out in outs], timeout=180, envs=envs)

    losses, weights = train(tf.distribute.get_strategy())
    assert losses.shape == (STEPS,) and losses[0] != losses[-1]
    for out in outs:
        result = np.load(out)
        # SupCon over the global batch x 2 views, head dim 4.
        assert_close(result["losses"], losses, dtype="float32",
                     terms=loss_terms(GLOBAL_BATCH, 2, 4))
        got = [result[f"arr_{i}"] for i in range(len(weights))]
        for a, b in zip(got, weights):
            # w minus three LARS updates, each from a gradient of a mean over the global
            # batch's samples (x 2 views) per step: terms = samples x steps, magnitude |w|.
            assert_close(a, b, dtype="float32", terms=GLOBAL_BATCH * 2 * STEPS)
