"""Gradient caching: a contrastive batch larger than memory, encoded sub-batch by sub-batch.

The contrastive loss needs every embedding of the global batch at once, but the
encoder's activations for all of them need not be alive together. With
`sub_batch_size=s` a train step
  1. encodes the batch s samples at a time without recording gradients and keeps
     only the outputs (embeddings: a few hundred floats per view),
  2. computes the loss on all of them and its gradient with respect to the outputs,
  3. encodes each sub-batch again, this time under a tape, and back-propagates the
     cached output gradient through it, summing the parameter gradients,
so peak activation memory is that of s samples, at the cost of one extra forward pass
(Gao et al. 2021, "Scaling deep contrastive learning batch size under memory limited
setup"). A batch of 4,096 pairs trains where only 512 fit.

For an encoder without batch-dependent layers the gradients equal the full-batch
ones. With BatchNorm they do not: each sub-batch is normalized with its own
statistics (as under a multi-device strategy without synchronized BatchNorm, where
each replica's batch is a "sub-batch"), and the moving averages are updated once per
sub-batch (s / batch as many samples per update, batch / s updates per step), so
their effective momentum is momentum ** (batch / s). The first pass's updates are
undone, so each sub-batch counts once. Layers that draw random numbers in `call`
(dropout) would draw different masks in the two passes and are not supported; draw
views before the step (or with the model's `augmenter`, applied once per step).

Both backends: on TensorFlow the sub-batches run in `tf.while_loop`s (any batch size,
eager or compiled; with `jit_compile` the batch must be a multiple of `sub_batch_size`);
on JAX in `lax.map` / `lax.scan` inside the jit-compiled stateless step (batches of views,
a multiple of `sub_batch_size`; no on-device `augmenter`).
`cached_gradients` (TensorFlow) returns the loss and gradients without applying them.
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.methods.base import unpack_batch
from supcon_tf.methods.simclr import SimCLR
from supcon_tf.methods.supcon import SupCon
from supcon_tf.registry import register


def _float_outputs(outputs):
    """The names of the float tensors in a `call` output dict (those that get gradients)."""
    return sorted(k for k, v in outputs.items() if "float" in str(v.dtype))


class GradientCache:
    """Mixin for a `ContrastiveModel`: the train step encodes `sub_batch_size` samples at a time.

    Use `GradientCacheSupCon` / `GradientCacheSimCLR`, or mix it in first:
    `class MyMethod(GradientCache, SupCon)`. `sub_batch_size=None` is the plain step.
    """

    def __init__(self, *args, sub_batch_size=None, **kwargs):
        super().__init__(*args, **kwargs)
        if sub_batch_size is not None and (not isinstance(sub_batch_size, int)
                                           or sub_batch_size < 1):
            raise ValueError("`sub_batch_size` must be None or an integer >= 1; "
                             f"received sub_batch_size={sub_batch_size!r}.")
        self.sub_batch_size = sub_batch_size

    def cached_gradients(self, x, y=None, sample_weight=None):
        """(loss, outputs, gradients) for `trainable_weights`, sub-batch by sub-batch.

        `loss` is what the plain step reports (already scaled for distribution);
        `outputs` is the `call` output dict for the whole batch. Eager or inside a
        `tf.function`, with a static or dynamic batch size.
        """
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError(
                "cached_gradients needs the TensorFlow backend (on JAX, `fit` runs the "
                f"cached step); the active Keras backend is {keras.backend.backend()!r}.")
        import tensorflow as tf

        if not (self.built and self.head.built):  # The weights are read below, before any call.
            self.build(tuple(x.shape))
        if self.augmenter is not None and len(x.shape) == 4:
            x = self.augmenter(x, training=True)  # Views drawn once, used by both passes.
        size = self.sub_batch_size
        batch = tf.shape(x)[0]
        num_chunks = (batch + size - 1) // size
        weights = self.trainable_weights

        # XLA needs equal sub-batches (the batch a multiple of sub_batch_size); the
        # graph and eager loops also take a smaller last one.
        uniform = bool(getattr(self, "jit_compile", False))
        if uniform and x.shape[0] is not None and x.shape[0] % size:
            raise ValueError(
                f"With jit_compile the batch size must be a multiple of sub_batch_size="
                f"{size}; received a batch of {x.shape[0]} (use drop_remainder=True).")

        def chunk(i, value):
            if uniform:
                return tf.slice(value, [i * size] + [0] * (len(value.shape) - 1),
                                [size] + [-1] * (len(value.shape) - 1))
            return value[i * size:(i + 1) * size]

        # 1. Outputs of every sub-batch, no tape; the BatchNorm updates are undone.
        saved = [tf.identity(v.value) for v in self.non_trainable_weights]
        spec = self.compute_output_spec(keras.KerasTensor((None,) + tuple(x.shape[1:]),
                                                          x.dtype))
        names = _float_outputs(spec)
        arrays = tuple(tf.TensorArray(spec[k].dtype, size=num_chunks, infer_shape=uniform,
                                      element_shape=[size] + list(spec[k].shape[1:])
                                      if uniform else None)
                       for k in names)

        def encode(i, arrays):
            outputs = self(chunk(i, x), training=True)
            return tuple(a.write(i, tf.stop_gradient(outputs[k]))
                         for a, k in zip(arrays, names))

        arrays = tf.while_loop(lambda i, _: i < num_chunks,
                               lambda i, a: (i + 1, encode(i, a)),
                               (tf.constant(0), arrays), parallel_iterations=1)[1]
        # Reshaping to the input's batch size lets XLA see a compile-time shape.
        outputs = {k: tf.reshape(a.stack() if uniform else a.concat(),
                                 [batch] + list(spec[k].shape[1:]))
                   for k, a in zip(names, arrays)}
        with tf.control_dependencies(list(outputs.values())):
            for variable, value in zip(self.non_trainable_weights, saved):
                variable.assign(value)

        # 2. The loss on the whole batch and its gradient w.r.t. the cached outputs.
        with tf.GradientTape() as tape:
            tape.watch(list(outputs.values()))
            loss = self._compute_loss(x=x, y=y, y_pred=outputs, sample_weight=sample_weight,
                                      training=True)
            scaled = self.optimizer.scale_loss(loss) if self.optimizer is not None else loss
        output_grads = tape.gradient(scaled, [outputs[k] for k in names],
                                     unconnected_gradients="zero")

        # 3. Each sub-batch again under a tape, back-propagating the cached gradients.
        def backward(i, totals):
            with tf.GradientTape() as chunk_tape:
                again = self(chunk(i, x), training=True)
                surrogate = tf.add_n([
                    tf.reduce_sum(tf.cast(again[k], "float32") * tf.cast(chunk(i, g), "float32"))
                    for k, g in zip(names, output_grads)])
            grads = chunk_tape.gradient(surrogate, weights, unconnected_gradients="zero")
            return tuple(t + tf.cast(g, t.dtype) for t, g in zip(totals, grads))

        totals = tuple(tf.zeros_like(w.value) for w in weights)
        with tf.control_dependencies([loss]):
            totals = tf.while_loop(lambda i, _: i < num_chunks,
                                   lambda i, t: (i + 1, backward(i, t)),
                                   (tf.constant(0), totals), parallel_iterations=1)[1]
        if self.losses:  # Weight regularizers: their gradient does not pass the outputs.
            with tf.GradientTape() as reg_tape:
                extra = tf.add_n([tf.cast(l, "float32") for l in self.losses])
                extra = extra / distribute.num_replicas_in_sync()
                if self.optimizer is not None:
                    extra = self.optimizer.scale_loss(extra)
            extra_grads = reg_tape.gradient(extra, weights, unconnected_gradients="zero")
            totals = tuple(t + g for t, g in zip(totals, extra_grads))
        return loss, outputs, list(totals)

    def _jax_train_step(self, state, data):
        """The JAX step: stateless, the sub-batches in `lax.map` / `lax.scan` loops."""
        import jax

        trainable, non_trainable, optimizer_vars, metrics_vars = state
        x, y, sample_weight = unpack_batch(data)
        if len(x.shape) != 5:
            raise ValueError("With gradient caching on JAX, batches must be views "
                             f"[batch, num_views, H, W, C]; received shape {tuple(x.shape)}.")
        size, batch = self.sub_batch_size, x.shape[0]
        size = min(size, batch)
        if batch % size:
            raise ValueError(f"On JAX the batch size must be a multiple of sub_batch_size="
                             f"{size}; received a batch of {batch} (use drop_remainder=True).")
        chunks = x.reshape((batch // size, size) + tuple(x.shape[1:]))

        def encode(trainable, non_trainable, chunk):
            return self.stateless_call(trainable, non_trainable, chunk, training=True)

        # 1. Outputs of every sub-batch (their BatchNorm updates are dropped).
        outputs = jax.lax.map(lambda c: encode(trainable, non_trainable, c)[0], chunks)
        names = _float_outputs(outputs)
        outputs = {k: v.reshape((batch,) + v.shape[2:]) for k, v in outputs.items()}

        # 2. Loss, its gradient w.r.t. the outputs and (regularizers) the weights.
        def loss_fn(trainable, cached):
            y_pred = dict(outputs, **cached)
            loss, (_, _, new_metrics) = self.stateless_compute_loss(
                trainable, non_trainable, metrics_vars, x=x, y=y, y_pred=y_pred,
                sample_weight=sample_weight, training=True)
            return loss, new_metrics

        (loss, metrics_vars), (direct, output_grads) = jax.value_and_grad(
            loss_fn, argnums=(0, 1), has_aux=True)(trainable, {k: outputs[k] for k in names})

        # 3. Each sub-batch again, pulling the cached output gradients back.
        def backward(carry, inputs):
            totals, non_trainable = carry
            chunk, grads = inputs
            (out, new_non_trainable), pull = jax.vjp(
                lambda t: encode(t, non_trainable, chunk), trainable)
            cotangent = ({k: grads.get(k, jax.numpy.zeros_like(v)) for k, v in out.items()},
                         jax.tree_util.tree_map(jax.numpy.zeros_like, new_non_trainable))
            (weights_grads,) = pull(cotangent)
            return (jax.tree_util.tree_map(jax.numpy.add, totals, weights_grads),
                    new_non_trainable), None

        grads_chunks = {k: g.reshape((batch // size, size) + g.shape[1:])
                        for k, g in output_grads.items()}
        (grads, non_trainable), _ = jax.lax.scan(backward, (direct, non_trainable),
                                                 (chunks, grads_chunks))
        trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads,
                                                                   trainable)
        logs, metrics_vars = self._update_metrics_variables(
            metrics_vars, loss, x, y, outputs, sample_weight)
        return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)

    def train_step(self, *args):
        if self.sub_batch_size is None:
            return super().train_step(*args)
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError(
                "Gradient caching (`sub_batch_size`) needs the TensorFlow or JAX backend; "
                f"the active Keras backend is {keras.backend.backend()!r}.")
        from keras.src.losses import loss as loss_module

        data = args[-1]
        self._check_batch(data, training=True)
        x, y, sample_weight = unpack_batch(data)
        loss, outputs, grads = self.cached_gradients(x, y, sample_weight)
        self._loss_tracker.update_state(loss_module.unscale_loss_for_distribution(loss),
                                        sample_weight=ops.shape(x)[0])
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self.compute_metrics(x, y, outputs, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(sub_batch_size=self.sub_batch_size)
        return config


@register
class GradientCacheSupCon(GradientCache, SupCon):
    """SupCon whose train step encodes `sub_batch_size` samples at a time (see module)."""


@register
class GradientCacheSimCLR(GradientCache, SimCLR):
    """SimCLR whose train step encodes `sub_batch_size` samples at a time (see module)."""
