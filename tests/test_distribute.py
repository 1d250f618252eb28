"""Strategy resolution (`distribute.get_strategy`) and the TPU code path under a stand-in."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from supcon_tf import distribute, encoders, methods
from supcon_tf.cli import build
from supcon_tf.cli.errors import UsageError
from supcon_tf.heads import ProjectionHead
from loss_reference import loss_terms
from tolerance import assert_close

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="tf.distribute runs on the TensorFlow backend")

CLUSTER = json.dumps({"cluster": {"worker": ["localhost:1", "localhost:2"]},
                      "task": {"type": "worker", "index": 0}})


@pytest.mark.parametrize("kwargs,want", [
    (dict(num_gpus=0, num_tpus=0), "cpu"),
    (dict(num_gpus=1, num_tpus=0), "gpu"),
    (dict(num_gpus=8, num_tpus=0), "mirrored"),
    (dict(num_gpus=8, num_tpus=4), "tpu"),                      # a TPU VM
    (dict(num_gpus=0, num_tpus=0, tpu="grpc://10.0.0.2:8470"), "tpu"),
    (dict(num_gpus=0, num_tpus=0, environ={"TPU_NAME": "my-tpu"}), "tpu"),
    (dict(num_gpus=2, num_tpus=0, environ={"TF_CONFIG": CLUSTER}), "multi_worker"),
    (dict(num_gpus=2, num_tpus=0, environ={"TF_CONFIG": json.dumps(
        {"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}})}),
     "mirrored"),                                               # a one-worker cluster
])
def test_auto_resolution_order(kwargs, want):
    kwargs.setdefault("environ", {})
    assert distribute.resolve_name("auto", **kwargs) == want


@pytest.mark.parametrize("name", ["cpu", "gpu", "mirrored", "multi_worker", "tpu"])
def test_explicit_names_are_kept(name):
    assert distribute.resolve_name(name, environ={}, num_gpus=0, num_tpus=0) == name


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="Unknown strategy 'mirror'.*'mirrored'.*Valid strategy "
                                         "names: auto, cpu, data_parallel, gpu, mirrored, "
                                         "multi_worker, tpu"):
        distribute.get_strategy("mirror")


def test_tf_config_parsing():
    assert distribute.tf_config_workers({}) == 0
    assert distribute.tf_config_workers({"TF_CONFIG": CLUSTER}) == 2
    chief = json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"], "ps": ["d:1"]}})
    assert distribute.tf_config_workers({"TF_CONFIG": chief}) == 3
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.tf_config_workers({"TF_CONFIG": "{not json"})
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.tf_config_workers({"TF_CONFIG": "[]"})


def test_cpu_and_auto_on_this_machine():
    strategy = distribute.get_strategy("cpu")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.num_replicas_in_sync == 1
    if not tf.config.list_physical_devices("GPU"):
        assert distribute.get_strategy() is tf.distribute.get_strategy()  # the default one
        with pytest.raises(ValueError, match="'gpu' needs a visible GPU"):
            distribute.get_strategy("gpu")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.get_strategy("multi_worker")


def test_gather_is_identity_off_strategy():
    x = np.arange(6.0).reshape(3, 2)
    gathered, offset = distribute.cross_replica_concat(x)
    assert gathered is x and offset == 0
    assert distribute.num_replicas_in_sync() == 1


class _TPUStandIns:
    """Records the TPU calls `get_strategy("tpu")` makes; the "TPUStrategy" is one CPU device."""

    def __init__(self, monkeypatch, fail=False):
        self.calls = []
        stand_ins = self

        class Resolver:
            def __init__(self, tpu):
                if fail:
                    raise ValueError("Could not lookup TPU")
                stand_ins.calls.append(("resolver", tpu))

        monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", Resolver)
        monkeypatch.setattr(tf.config, "experimental_connect_to_cluster",
                            lambda r: self.calls.append(("connect", type(r).__name__)))
        monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system",
                            lambda r: self.calls.append(("initialize", type(r).__name__)))

        class Strategy:  # A class, since Keras runs isinstance(s, tf.distribute.TPUStrategy).
            def __new__(cls, resolver):
                stand_ins.calls.append(("strategy", type(resolver).__name__))
                return tf.distribute.OneDeviceStrategy("/cpu:0")

        monkeypatch.setattr(tf.distribute, "TPUStrategy", Strategy)


def test_tpu_path_with_address(monkeypatch):
    stand_ins = _TPUStandIns(monkeypatch)
    distribute.get_strategy("tpu", tpu="grpc://10.0.0.2:8470")
    assert stand_ins.calls == [("resolver", "grpc://10.0.0.2:8470"), ("connect", "Resolver"),
                               ("initialize", "Resolver"), ("strategy", "Resolver")]


def test_tpu_vm_is_local_and_not_connected(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    stand_ins = _TPUStandIns(monkeypatch)
    distribute.get_strategy("tpu")
    assert stand_ins.calls == [("resolver", "local"), ("initialize", "Resolver"),
                               ("strategy", "Resolver")]


def test_unreachable_tpu_names_the_argument(monkeypatch):
    _TPUStandIns(monkeypatch, fail=True)
    with pytest.raises(ValueError, match="no TPU could be reached at tpu='nope'.*`tpu` must "
                                         "name a reachable TPU"):
        distribute.get_strategy("tpu", tpu="nope")
    # The command line's strategy: a usage error (exit status 2) naming the flag.
    with pytest.raises(UsageError, match="--strategy=tpu: no TPU could be reached at "
                                         "tpu='nope'"):
        build.get_strategy("tpu", tpu="nope")


def test_no_tpu_on_this_host_names_the_address(monkeypatch):
    """What TensorFlow raises on a machine without TPUs becomes a ValueError (exit 2)."""
    monkeypatch.delenv("TPU_NAME", raising=False)
    _TPUStandIns(monkeypatch)

    def not_found(resolver):
        raise tf.errors.NotFoundError(None, None, "TPUs not found in the cluster.")

    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", not_found)
    with pytest.raises(ValueError, match="no TPU could be reached at tpu='local' "
                                         r"\(TPUs not found in the cluster.\)"):
        distribute.get_strategy("tpu")


def test_tf_config_task_must_be_in_its_cluster():
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    task = distribute.tf_config_task(
        {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})})
    assert task == (cluster, "worker", 1)
    assert distribute.tf_config_task({}) is None
    for bad in ({"type": "worker", "index": 2}, {"type": "ps", "index": 0}, {}):
        environ = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": bad})}
        with pytest.raises(ValueError, match="not a member of its cluster \\(chief 0..0, "
                                             "worker 0..1\\)"):
            distribute.tf_config_task(environ)


@pytest.mark.parametrize("cluster,task,chief", [
    ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, True),
    ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1}, False),
    ({"chief": ["a:1"], "worker": ["b:1"]}, {"type": "chief", "index": 0}, True),
    ({"chief": ["a:1"], "worker": ["b:1"]}, {"type": "worker", "index": 0}, False),
])
def test_is_chief_from_tf_config(cluster, task, chief):
    environ = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}
    assert distribute.is_chief(environ=environ) is chief
    # A one-process strategy writes whatever TF_CONFIG says.
    assert distribute.is_chief(tf.distribute.get_strategy(), environ=environ) is True
    assert distribute.is_chief(environ={}) is True


def test_training_under_the_tpu_stand_in_matches_no_strategy(monkeypatch):
    """The code path the CLI takes on a TPU: objects built in the strategy's scope, then fit."""
    _TPUStandIns(monkeypatch)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 8)
    views = rng.random((8, 2, 8, 8, 1)).astype("float32") + labels[:, None, None, None, None] / 3

    def train(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4, 8), dim=8,
                                   sync_batch_norm=True)
            model = methods.SupCon(encoder, ProjectionHead(output_dim=4, sync_batch_norm=True))
            model.compile(optimizer="sgd")
        history = model.fit(views, labels, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return history.history["loss"], model.get_weights()

    tpu_loss, tpu_weights = train(distribute.get_strategy("auto", tpu="my-tpu"))
    loss, weights = train(tf.distribute.get_strategy())
    # float32: SupCon over 8 samples x 2 views (head dim 4); the weights after 2 SGD steps,
    # each from a gradient of a mean over those 16 samples (magnitude |w|).
    assert_close(tpu_loss, loss, dtype="float32", terms=loss_terms(8, 2, 4))
    for a, b in zip(tpu_weights, weights):
        assert_close(a, b, dtype="float32", terms=16 * 2)


def test_wait_for_workers_names_the_missing_address_and_passes_when_all_listen():
    import socket

    from _cli_runs import free_ports

    own, other = free_ports(2)
    environ = {"TF_CONFIG": json.dumps({
        "cluster": {"worker": [f"localhost:{own}", f"localhost:{other}"]},
        "task": {"type": "worker", "index": 0}})}
    with pytest.raises(ValueError, match=f"no connection to localhost:{other} within 0.5 s"):
        distribute.wait_for_workers(0.5, environ, poll=0.1)
    with socket.socket() as peer:  # the other worker, listening
        peer.bind(("localhost", other))
        peer.listen(1)
        distribute.wait_for_workers(5, environ, poll=0.1)
    with socket.socket() as taken:  # this worker's own port held by another process
        taken.bind(("", own))
        taken.listen(1)
        with pytest.raises(ValueError, match=f"address 'localhost:{own}'.*cannot be listened"):
            distribute.wait_for_workers(5, environ, poll=0.1)
