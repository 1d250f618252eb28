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

STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu", "data_parallel")
# Environment variables that name a multi-host JAX cluster (read by
# `keras.distribution.initialize`; JAX reads the coordinator's address itself).
JAX_CLUSTER_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "JAX_COORDINATOR_ADDRESS")


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
    global batch; `tests/test_distribute_replicas.py` checks it on 1 and 2
    replicas (4 for some methods). Every replica must hold the same local batch size (use
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


def tf_config_task(environ=None):
    """`(cluster, task_type, task_index)` of this process in `TF_CONFIG`; None if it is unset.

    Raises ValueError when the task is missing or does not name a member of the cluster
    (a task index outside its job's list of addresses, say).
    """
    environ = os.environ if environ is None else environ
    if not tf_config_workers(environ):
        return None
    config = json.loads(environ["TF_CONFIG"])
    cluster, task = config["cluster"], config.get("task") or {}
    task_type, index = task.get("type"), task.get("index", 0)
    jobs = {job: len(addresses) for job, addresses in cluster.items()}
    if task_type not in jobs or not isinstance(index, int) or not 0 <= index < jobs[task_type]:
        members = ", ".join(f"{job} 0..{n - 1}" for job, n in jobs.items() if n)
        raise ValueError(
            f"`TF_CONFIG` task {{\"type\": {task_type!r}, \"index\": {index!r}}} is not a "
            f"member of its cluster ({members}); give each process its own type and index.")
    return cluster, task_type, index


def is_multi_worker(strategy):
    """Whether `strategy` spans more than one process (TF workers or JAX hosts)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.process_count() > 1
    extended = getattr(strategy, "extended", None)
    in_multi_worker = getattr(extended, "_in_multi_worker_mode", None)
    return bool(in_multi_worker and in_multi_worker())


def is_chief(strategy=None, environ=None):
    """Whether this process writes a run's files: checkpoints, metrics, pictures, export.

    Exactly one process of a run does (TensorFlow's convention): every process of a
    single-process run; under a multi-worker strategy the task of type "chief", or
    worker 0 of a cluster without one; process 0 of a multi-host JAX run. Without a
    `strategy` the answer comes from the environment (`TF_CONFIG`) alone.
    """
    if keras.backend.backend() == "jax":
        import jax

        return jax.process_index() == 0
    if strategy is not None and not is_multi_worker(strategy):
        return True
    task = tf_config_task(environ)
    if task is None:
        return True
    cluster, task_type, index = task
    return task_type == "chief" or (task_type == "worker" and index == 0
                                    and not cluster.get("chief"))


def barrier(strategy):
    """Waits until every worker of a multi-worker `strategy` gets here (else returns).

    A one-element all-reduce: what the chief wrote before it is there for all after it
    (e.g. a checkpoint that a worker reads next).
    """
    if keras.backend.backend() != "tensorflow" or not is_multi_worker(strategy):
        return
    import tensorflow as tf

    strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)


def worker_values(strategy, value):
    """`value` (an integer below 2**53) of every replica of a multi-worker `strategy`, in
    replica order; `[value]` off one. Every worker must call it at the same point."""
    if keras.backend.backend() != "tensorflow" or not is_multi_worker(strategy):
        return [int(value)]
    import tensorflow as tf

    local = strategy.run(lambda: tf.constant([float(value)], tf.float64))
    return [int(v) for v in strategy.gather(local, axis=0).numpy()]


def jax_data_parallel(environ=None):
    """`keras.distribution.DataParallel` over every device of a JAX run, set as Keras'
    distribution; None on one device (nothing to distribute).

    When the environment names a cluster (`JAX_CLUSTER_ENV`), this process first joins
    it (`keras.distribution.initialize`, i.e. `jax.distributed.initialize`), so the
    devices are those of every host. Each host then feeds its own rows of every global
    batch (`distribute_global_batches`), not a shard of its own pipeline.
    """
    import jax

    environ = os.environ if environ is None else environ
    if any(environ.get(k) for k in JAX_CLUSTER_ENV) and not jax.distributed.is_initialized():
        keras.distribution.initialize()
    devices = jax.devices()
    if len(devices) == 1:
        return None
    distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    return distribution


def _process_rows(dataset, count, index):
    """Rows `index` of `count` equal parts of every batch of `dataset`."""
    import tensorflow as tf

    global_batch = tf.nest.flatten(dataset.element_spec)[0].shape[0]
    if global_batch is None or global_batch % count:
        raise ValueError(f"The global batch ({global_batch}) must be static and divisible "
                         f"by the {count} processes of the run.")
    rows = global_batch // count

    def mine(*element):
        cut = tf.nest.map_structure(lambda t: t[index * rows:(index + 1) * rows], element)
        return cut[0] if len(cut) == 1 else cut

    return dataset.map(mine)


def distribute_global_batches(strategy, dataset):
    """Each replica's slice of the global batches of `dataset`, which every worker builds
    alike; `dataset` itself unless `strategy` spans several workers.

    Every worker runs the whole pipeline and keeps its replicas' rows of each global
    batch, so together the replicas train on exactly the batches of one process.
    TensorFlow's automatic sharding instead rewrites the pipeline's `batch` to the
    per-worker size, so that a random augmentation mapped over the batch draws other
    numbers than on one process. The batch size of `dataset` must be static
    (`drop_remainder=True`) and divisible by the number of replicas. On a multi-host
    JAX run (`strategy` unused) each host keeps its rows of every global batch.
    """
    if not is_multi_worker(strategy):
        return dataset
    if keras.backend.backend() == "jax":  # Keras assembles the hosts' rows.
        import jax

        return _process_rows(dataset, jax.process_count(), jax.process_index())
    import tensorflow as tf

    global_batch = tf.nest.flatten(dataset.element_spec)[0].shape[0]
    replicas = strategy.num_replicas_in_sync
    if global_batch is None or global_batch % replicas:
        raise ValueError(f"The global batch ({global_batch}) must be static and divisible "
                         f"by the {replicas} replicas of the cluster.")
    per_replica = global_batch // replicas

    def per_worker(context):
        # The worker's rows, as one batch per local replica in replica order.
        return _process_rows(dataset, context.num_input_pipelines,
                             context.input_pipeline_id).unbatch().batch(
                                 per_replica, drop_remainder=True)

    return strategy.distribute_datasets_from_function(per_worker)


def _connects(address, timeout=1.0):
    import socket

    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout).close()
        return True
    except (OSError, ValueError):
        return False


def wait_for_workers(timeout, environ=None, poll=0.5):
    """Waits until every other address of the `TF_CONFIG` cluster accepts a connection.

    TensorFlow's own start waits an hour for a missing worker, holding the interpreter
    (no Python timer runs meanwhile). So each worker first listens on its own address
    (that is how the others see it) and connects to theirs; once all answer it stops
    listening and TensorFlow takes the port. Raises ValueError naming the addresses
    that did not answer within `timeout` seconds, or its own address if that is taken.
    """
    import socket
    import time

    task = tf_config_task(environ)
    if task is None:
        return
    cluster, task_type, index = task
    own = cluster[task_type][index]
    others = [a for addresses in cluster.values() for a in addresses if a != own]
    host, _, port = own.rpartition(":")
    listener = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", int(port)))
        listener.listen(64)
    except OSError as error:
        listener.close()
        raise ValueError(f"this worker's address {own!r} (TF_CONFIG task {task_type} "
                         f"{index}) cannot be listened on: {error}.") from None
    deadline = time.monotonic() + timeout
    try:
        while True:
            missing = [a for a in others if not _connects(a)]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(poll)
    finally:
        listener.close()
    if missing:
        raise ValueError(f"no connection to {', '.join(missing)} within {timeout:g} s: "
                         "start every worker of the cluster (each with its own task index) "
                         "or fix the addresses in TF_CONFIG.")


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
        if address != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"no TPU could be reached at tpu={address!r} ({first}). `tpu` must name a "
            "reachable TPU: a grpc:// address, a Cloud TPU name, or 'local' on a TPU VM "
            "(--tpu, else $TPU_NAME, else 'local')."
        ) from None
    return tf.distribute.TPUStrategy(resolver)


# Names of BatchNorm's moving statistics (Keras 3, tf.keras, TF1 layers; a teacher's
# copies end in them too).
_MOVING_STATISTICS = ("moving_mean", "moving_variance", "moving_stddev")


def _mean_moving_statistics(next_creator, **kwargs):
    """A variable creator: BatchNorm moving statistics averaged across replicas on write.

    Keras creates them with aggregation NONE, so under a mirrored strategy each replica
    updated its own copy from its slice of the batch: the copies drifted apart, a
    checkpoint (replica 0's values) could not restore the others, and a resumed run
    differed from an uninterrupted one wherever the statistics are read (the linear
    stage's frozen encoder). With MEAN every update is all-reduced, so every replica
    holds the same values: the mean over replicas of their moving averages (the global
    one when BatchNorm is synchronized, and for the mean of equal slices).
    """
    import tensorflow as tf

    name = str(kwargs.get("name") or "").split(":")[0]
    if (kwargs.get("trainable") is False and name.endswith(_MOVING_STATISTICS)
            and kwargs.get("aggregation") in (None, tf.VariableAggregation.NONE)):
        kwargs["aggregation"] = tf.VariableAggregation.MEAN
    return next_creator(**kwargs)


def _same_statistics_on_every_replica(strategy_class):
    """`strategy_class` whose `scope()` also averages BatchNorm moving statistics across
    replicas (`_mean_moving_statistics`)."""
    import contextlib

    import tensorflow as tf

    class Strategy(strategy_class):
        @contextlib.contextmanager
        def scope(self):
            with super().scope() as scope, \
                    tf.variable_creator_scope(_mean_moving_statistics):
                yield scope

    Strategy.__name__ = Strategy.__qualname__ = strategy_class.__name__
    return Strategy


def multi_worker_strategy(**kwargs):
    """`tf.distribute.MultiWorkerMirroredStrategy(**kwargs)` that Keras 3's `fit` can use.

    Keras 3 (checked with 3.15; keras-team/keras#20585) calls, only for this strategy,
    `strategy.reduce("MEAN", batch, axis=None)` on a whole first `(x, y)` batch in
    `_maybe_symbolic_build`, and `strategy.reduce("MEAN", log, axis=0)` on scalar logs
    after each step; the strategy raises on both. This subclass reduces what Keras
    needs and nothing more:
      * the first batch is used only for its shapes and dtypes (to build the model
        symbolically), so that call gets this worker's first local slice without any
        collective: a raw uint8 image batch (augmentation on the device) cannot be
        all-reduced, and a float one would be sent across the cluster for nothing;
      * scalars are reduced across replicas (axis None), every other value as asked.
    Every other caller of `reduce` gets the strategy's own cross-worker reduction.
    BatchNorm moving statistics are averaged across replicas on every update
    (`_mean_moving_statistics`), as with `get_strategy("mirrored")`.
    """
    import sys

    import tensorflow as tf

    class MultiWorkerMirroredStrategy(
            _same_statistics_on_every_replica(tf.distribute.MultiWorkerMirroredStrategy)):
        def reduce(self, reduce_op, value, axis):
            if sys._getframe(1).f_code.co_name == "_maybe_symbolic_build":
                return tf.nest.map_structure(
                    lambda v: self.experimental_local_results(v)[0], value)
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
        over the cluster in `TF_CONFIG`) or `tpu`. On KERAS_BACKEND=jax, `auto` and
        `data_parallel` return `jax_data_parallel()` (every device) when there are
        several devices; `data_parallel` is refused on other backends.
      tpu: TPU address or name for `tpu` (and, when given, for `auto`).
      devices: device names for `mirrored`, e.g. `["/cpu:0", "/cpu:1"]`.

    Under `mirrored` and `multi_worker` every replica holds the same BatchNorm moving
    statistics (averaged across replicas on each update), so a checkpoint restores
    every replica's state.

    Create the model, its optimizer and metrics under `strategy.scope()`; Keras'
    `fit` then splits each global batch across the replicas.
    """
    if keras.backend.backend() == "jax" and name in ("auto", "data_parallel"):
        distribution = jax_data_parallel()
        if distribution is not None:
            return distribution
        name = "auto"  # One device.
    elif name == "data_parallel":
        raise ValueError(
            "`name`='data_parallel' is keras.distribution's DataParallel, for "
            f"KERAS_BACKEND=jax; on the {keras.backend.backend()} backend use 'mirrored' "
            "(every local device) or 'multi_worker' (TF_CONFIG).")
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
        return _same_statistics_on_every_replica(tf.distribute.MirroredStrategy)(
            devices=devices)
    if resolved == "multi_worker":
        if not tf_config_workers():
            raise ValueError(
                "`name`='multi_worker' reads the cluster from the TF_CONFIG environment "
                "variable, which is not set."
            )
        tf_config_task()  # A task outside its cluster fails here, not in TensorFlow.
        return multi_worker_strategy()
    return tpu_strategy(tpu)
