"""Two MultiWorkerMirroredStrategy workers on localhost agree with one process.

Each worker is a subprocess (`tests/_multi_worker.py`) with its own TF_CONFIG on
free ports chosen now; both are bounded in time and always killed at the end.
Losses agree to 1e-5 (relative); weights after three LARS steps to 2e-5 times the
tensor's largest magnitude (float32 sums in another order, compounded over steps).
"""

import json
import socket

import keras
import numpy as np
import pytest
import tensorflow as tf

from _multi_worker import STEPS, train
from _subprocess import run_all, script_env

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="tf.distribute runs on the TensorFlow backend")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


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
        np.testing.assert_allclose(result["losses"], losses, rtol=1e-5)
        got = [result[f"arr_{i}"] for i in range(len(weights))]
        for a, b in zip(got, weights):
            np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * max(1.0, np.abs(b).max()))
