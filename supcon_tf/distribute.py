"""The one cross-replica gather helper every global-batch loss calls.

Under a `tf.distribute` strategy with N replicas each replica holds a slice of the
global batch; `cross_replica_concat` returns the global batch (in replica order)
and where the local slice starts in it. Everywhere else (one device, the JAX
backend, whose arrays are already global under `keras.distribution`) it is the
identity with offset 0. TensorFlow is imported lazily, so the module also loads
in environments without it.
"""

import keras


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
    of the summed upstream gradients that belongs to its own samples, so summing
    per-replica gradients (what every strategy does) equals the single-device
    gradient on the global batch. Every replica must hold the same local batch
    size (use `drop_remainder=True`).
    """
    ctx = _tf_replica_context()
    if ctx is None:
        return tensor, 0
    import tensorflow as tf

    local_batch = tf.shape(tensor)[0]
    replica_id = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
    gathered = ctx.all_gather(tensor, axis=0)
    return gathered, replica_id * local_batch
