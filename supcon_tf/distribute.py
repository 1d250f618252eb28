"""Strategies from a name, and the one cross-replica gather helper every global-batch loss calls.

`get_strategy("auto")` resolves a `--strategy` name to a `tf.distribute.Strategy`;
models, optimizers and metrics are then created under `strategy.scope()`.

Under a `tf.distribute` strategy with N replicas each replica holds a slice of the
global batch; `cross_replica_concat` returns the global batch (in replica order)
and where the local slice starts in it. Everywhere else (one device, the JAX
backend, whose arrays are already global under `keras.distribution`) it is the
identity with offset 0. TensorFlow is imported lazily, so the module also loads
in environments without it.
"""

import json
import os

import keras

from supcon_tf.registry import unknown_name_error

STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu")


def _tf_replica_context():
    """The active TF replica context with more than one replica, else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()  # None in a cross-replica context.
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        return ctx
    return None


def num_replicas_in_sync():
    """Number of replicas that each hold a slice of the batch (1 off-strategy)."""
    ctx = _tf_replica_context()
    return 1 if ctx is None else ctx.num_replicas_in_sync


def cross_replica_concat(tensor):
    """Returns `(global_tensor, local_offset)`: `tensor` gathered along axis 0.

    The gather is differentiable: the gradient reaching each replica is the slice
    of the summed upstream gradients that belongs to its own samples (the gradient
    TensorFlow defines for `ReplicaContext.all_gather`), so summing per-replica
    gradients (what every strategy does) equals the single-device gradient on the
    global batch; `tests/test_distribute_replicas.py` checks it on 1, 2 and 4
    replicas. Every replica must hold the same local batch size (use
    `drop_remainder=True`).
    """
    ctx = _tf_replica_context()
    if ctx is None:
        return tensor, 0
    import tensorflow as tf

    local_batch = tf.shape(tensor)[0]
    replica_id = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
    gathered = ctx.all_gather(tensor, axis=0)
    return gathered, replica_id * local_batch


# --- Strategy resolution ---------------------------------------------------------

def tf_config_workers(environ=None):
    """Number of workers (chief included) in the `TF_CONFIG` cluster; 0 if it is unset.

    Raises ValueError when `TF_CONFIG` is set but is not a JSON object with a `cluster`.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG", "")
    if not raw.strip():
        return 0
    try:
        config = json.loads(raw)
        cluster = config["cluster"]
        return sum(len(cluster.get(job, ())) for job in ("chief", "worker"))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            "`TF_CONFIG` must be JSON like {\"cluster\": {\"worker\": [\"host:port\", ...]}, "
            f"\"task\": {{\"type\": \"worker\", \"index\": 0}}}}; received TF_CONFIG={raw!r} "
            f"({error})."
        ) from None


def is_chief(environ=None):
    """Whether this process is the chief of its `TF_CONFIG` cluster: the `chief` task,
    or worker 0 of a cluster without one; True without `TF_CONFIG` (a single worker)."""
    environ = os.environ if environ is None else environ
    if tf_config_workers(environ) == 0:
        return True
    config = json.loads(environ["TF_CONFIG"])
    task = config.get("task") or {}
    if task.get("type") == "chief":
        return True
    return ("chief" not in config["cluster"] and task.get("type", "worker") == "worker"
            and int(task.get("index", 0)) == 0)


def resolve_name(name="auto", tpu=None, environ=None, num_gpus=None, num_tpus=None):
    """The concrete strategy name `get_strategy` builds for `name`.

    `auto` picks, in order: a TPU (a `tpu` address, the `TPU_NAME` environment
    variable, or TPU devices on this host, i.e. a TPU VM), a multi-worker cluster
    (`TF_CONFIG` with more than one worker), all local GPUs (`mirrored` for 2+,
    `gpu` for one), else `cpu`. The device counts are looked up when not given.
    """
    if name not in STRATEGIES:
        raise unknown_name_error("strategy", name, STRATEGIES)
    if name != "auto":
        return name
    environ = os.environ if environ is None else environ
    if num_tpus is None or num_gpus is None:
        import tensorflow as tf

        if num_tpus is None:
            num_tpus = len(tf.config.list_physical_devices("TPU"))
        if num_gpus is None:
            num_gpus = len(tf.config.list_physical_devices("GPU"))
    if tpu or environ.get("TPU_NAME") or num_tpus:
        return "tpu"
    if tf_config_workers(environ) > 1:
        return "multi_worker"
    if num_gpus > 1:
        return "mirrored"
    return "gpu" if num_gpus == 1 else "cpu"


def tpu_strategy(tpu=None):
    """Connects to a TPU (address, name, or `"local"` on a TPU VM) and returns a TPUStrategy.

    `tpu=None` falls back to `TPU_NAME`, then to `"local"`.
    """
    import tensorflow as tf

    address = tpu or os.environ.get("TPU_NAME") or "local"
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
    except (ValueError, RuntimeError) as error:
        raise ValueError(
            f"`tpu` must name a reachable TPU (a grpc:// address, a Cloud TPU name, or "
            f"'local' on a TPU VM); received tpu={address!r} ({error})."
        ) from None
    if address != "local":
        tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def multi_worker_strategy(**kwargs):
    """`tf.distribute.MultiWorkerMirroredStrategy(**kwargs)` that Keras 3's `fit` can use.

    Keras 3 (checked with 3.15; keras-team/keras#20585) calls, only for this strategy,
    `strategy.reduce("MEAN", batch, axis=None)` on a whole `(x, y)` batch before its
    first step, and `strategy.reduce("MEAN", log, axis=0)` on scalar logs after each;
    the strategy raises on both. This subclass reduces nests value by value and
    scalars across replicas only; nothing else changes.
    """
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            parent = super(MultiWorkerMirroredStrategy, self)

            def one(v):
                rank = self.experimental_local_results(v)[0].shape.rank
                return parent.reduce(reduce_op, v, None if rank == 0 else axis)

            return tf.nest.map_structure(one, value)

    return MultiWorkerMirroredStrategy(**kwargs)


def get_strategy(name="auto", tpu=None, devices=None):
    """A `tf.distribute.Strategy` for a `--strategy` name.

    Args:
      name: one of `STRATEGIES`: `auto` (see `resolve_name`; on one device it returns
        TensorFlow's default strategy), `cpu` / `gpu` (`OneDeviceStrategy`), `mirrored`
        (all local GPUs, or `devices`), `multi_worker` (`MultiWorkerMirroredStrategy`
        over the cluster in `TF_CONFIG`) or `tpu`.
      tpu: TPU address or name for `tpu` (and, when given, for `auto`).
      devices: device names for `mirrored`, e.g. `["/cpu:0", "/cpu:1"]`.

    Create the model, its optimizer and metrics under `strategy.scope()`; Keras'
    `fit` then splits each global batch across the replicas.
    """
    import tensorflow as tf

    resolved = resolve_name(name, tpu=tpu)
    if name == "auto" and resolved in ("cpu", "gpu"):
        # One device: TensorFlow's default strategy places on it like OneDeviceStrategy,
        # without the distributed input and step machinery (faster).
        return tf.distribute.get_strategy()
    if resolved == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if resolved == "gpu":
        if not tf.config.list_physical_devices("GPU"):
            raise ValueError(
                "`name`='gpu' needs a visible GPU; none found. Valid strategy names: "
                f"{', '.join(STRATEGIES)} ('auto' falls back to the CPU)."
            )
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    if resolved == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if resolved == "multi_worker":
        if not tf_config_workers():
            raise ValueError(
                "`name`='multi_worker' reads the cluster from the TF_CONFIG environment "
                "variable, which is not set."
            )
        return multi_worker_strategy()
    return tpu_strategy(tpu)
