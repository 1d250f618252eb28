"""A resumable `model.fit`: epoch by epoch, checkpointed, with the data order fixed.

Preemption-safe training needs three things that `fit` alone does not give:
  * the data order of an epoch must not depend on what ran before, so each epoch's
    pipeline is built from a seed derived from (seed, epoch) and a resumed epoch
    skips the batches already trained on;
  * the step, the model's and the optimizer's variables (the on-device augmenter's
    seed state included) are saved atomically every N steps and at epoch ends;
  * a rerun restores the newest checkpoint and continues at its step, so no step is
    repeated or skipped.
Each epoch is one `fit` call on that epoch's pipeline (the compiled step is reused).
In a multi-worker run every worker trains and takes part in each save; only the chief
(`distribute.is_chief`) writes checkpoints and TensorBoard files, and every worker
waits at each save until the chief's checkpoint is complete.
"""

import os
import signal
import time

import keras
import numpy as np

from supcon_tf import distribute
from supcon_tf.cli import checkpoint, say
from supcon_tf.cli.build import current_learning_rate


def summary_writer(log_dir, log=say):
    """A TensorBoard writer for `log_dir`, or None (with a note) without TensorBoard."""
    import importlib.util

    import tensorflow as tf

    if importlib.util.find_spec("tensorboard") is None:
        log(f"TensorBoard is not installed: no event files in {log_dir} "
            "(pip install tensorboard).")
        return None
    return tf.summary.create_file_writer(log_dir)


def epoch_seed(seed, epoch):
    """A 31-bit seed for `epoch`'s data pipeline, a fixed function of (seed, epoch)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0] >> 1)


class _StepHooks(keras.callbacks.Callback):
    """Saves every `every` steps (and is killed or interrupted there when a test fault
    asks for it)."""

    def __init__(self, loop):
        super().__init__()
        self.loop = loop
        self.kill_at = checkpoint.fault("kill_at_step", loop.name)
        self.interrupt_at = checkpoint.fault("sigint_at_step", loop.name)

    def on_train_batch_end(self, batch, logs=None):
        step = self.loop.step = self.loop.fit_base + batch + 1
        every = self.loop.checkpoint_every
        if every and step % every == 0 and step % self.loop.steps_per_epoch != 0:
            self.loop.save(step)
        if self.kill_at is not None and step >= self.kill_at:
            checkpoint.die()
        if self.interrupt_at is not None and step >= self.interrupt_at:
            self.interrupt_at = None
            os.kill(os.getpid(), signal.SIGINT)  # What Ctrl-C sends.


class _Summaries(keras.callbacks.Callback):
    """Writes the epoch's logs and learning rate to TensorBoard at the global step."""

    def __init__(self, loop, writer):
        super().__init__()
        self.loop = loop
        self.writer = writer

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        step = self.loop.step
        with self.writer.as_default(step=step):
            for key, value in (logs or {}).items():
                tf.summary.scalar(f"{self.loop.name}/{key}", float(value))
            tf.summary.scalar(f"{self.loop.name}/learning_rate",
                              current_learning_rate(self.loop.optimizer))
        self.writer.flush()


class ResumableFit:
    """Trains `model` for `epochs` epochs of `steps_per_epoch` steps, resuming if it can.

    Args:
      name: the stage name, used in logs ("pretrain", "linear").
      model: a compiled model whose `optimizer` is built.
      variables: every variable that defines the training state, in a fixed order.
      make_epoch_data: `fn(epoch, seed)` -> a `tf.data.Dataset` of that epoch's batches,
        in an order fixed by `seed`.
      checkpoint_dir, keep: where and how many checkpoints.
      checkpoint_every: also save every this many steps (0: epoch ends only).
      log_dir: TensorBoard folder (None: no summaries).
      callbacks: extra Keras callbacks (e.g. a kNN monitor).
      log: a print-like function for one progress line per epoch.
    """

    def __init__(self, name, model, variables, make_epoch_data, steps_per_epoch, epochs,
                 seed, checkpoint_dir, keep=2, checkpoint_every=0, log_dir=None,
                 callbacks=(), log=say):
        self.name = name
        self.model = model
        self.optimizer = model.optimizer
        self.variables = list(variables)
        self.make_epoch_data = make_epoch_data
        self.steps_per_epoch = int(steps_per_epoch)
        self.epochs = int(epochs)
        self.seed = seed
        self.strategy = getattr(model, "distribute_strategy", None)  # None on JAX
        self.chief = distribute.is_chief(self.strategy)
        self.checkpoints = checkpoint.Checkpointer(checkpoint_dir, keep, write=self.chief)
        self.checkpoint_every = int(checkpoint_every)
        self.log_dir = log_dir
        self.callbacks = list(callbacks)
        self.log = log
        self.step = 0  # the global step: the restored one plus the steps trained since
        self.fit_base = 0  # the global step at the start of the current `fit` call

    @property
    def total_steps(self):
        return self.epochs * self.steps_per_epoch

    def save(self, step):
        epoch, offset = divmod(step, self.steps_per_epoch)
        self.checkpoints.save(step, self.variables, epoch=epoch, step_in_epoch=offset,
                              total_steps=self.total_steps,
                              optimizer_iterations=int(self.optimizer.iterations.numpy()))
        distribute.barrier(self.strategy)  # The chief's checkpoint is complete for all.

    def restore(self):
        """Restores the newest checkpoint; returns its step (0 if there is none)."""
        marker = self.checkpoints.latest()
        if marker is None:
            return 0
        if marker.get("total_steps", self.total_steps) != self.total_steps:
            raise ValueError(f"{self.name} checkpoint was written for {marker['total_steps']} "
                             f"steps; this config trains {self.total_steps}.")
        self.checkpoints.restore(self.variables)
        return int(marker["step"])

    def completed(self):
        marker = self.checkpoints.latest()
        return marker is not None and marker["step"] >= self.total_steps

    def run(self):
        """Trains to the end (or returns at once if a checkpoint says it is done)."""
        step = self.restore()
        if step >= self.total_steps:
            self.log(f"[{self.name}] already complete ({step} steps); nothing to train.")
            return
        if step:
            self.log(f"[{self.name}] resuming from the checkpoint of step {step} "
                     f"(epoch {step // self.steps_per_epoch + 1}).")
        self.step = step
        callbacks = [_StepHooks(self)] + self.callbacks
        writer = summary_writer(self.log_dir, self.log) if self.log_dir and self.chief \
            else None
        if writer is not None:
            callbacks.append(_Summaries(self, writer))
        while step < self.total_steps:
            epoch, offset = divmod(step, self.steps_per_epoch)
            steps = self.steps_per_epoch - offset
            data = self.make_epoch_data(epoch, epoch_seed(self.seed, epoch))
            data = distribute.distribute_global_batches(self.strategy,
                                                       data.skip(offset).take(steps))
            start = time.time()
            self.fit_base = step
            history = self.model.fit(data, epochs=epoch + 1, initial_epoch=epoch,
                                     steps_per_epoch=steps, callbacks=callbacks, shuffle=False,
                                     verbose=0)
            step = self.step
            if step != (epoch + 1) * self.steps_per_epoch:
                raise RuntimeError(
                    f"[{self.name}] epoch {epoch + 1} ended at step {step}, expected "
                    f"{(epoch + 1) * self.steps_per_epoch}: the data pipeline yielded too "
                    "few batches for the configured steps per epoch.")
            self.save(step)
            logs = {k: v[-1] for k, v in history.history.items()}
            shown = " ".join(f"{k} {v:.4f}" for k, v in logs.items())
            self.log(f"[{self.name}] epoch {epoch + 1}/{self.epochs} step {step}/"
                     f"{self.total_steps} {shown} lr {current_learning_rate(self.optimizer):.4g}"
                     f" ({time.time() - start:.1f}s)")
