"""Worker script for tests/test_distribute_replicas.py (run as a subprocess).

Splits the CPU into 4 logical devices before TensorFlow initializes them, then
trains SupCon, SimCLR, metric learning (triplet; with cross-batch memory; proxy-anchor), MoCo and supervised
MoCo (key-encoder BN shuffled across replicas, queue wrapping around), BYOL, SimSiam, SwAV (with
its queue), NNCLR (its support queue wrapping around), InstDisc (its memory bank, noise drawn
for the global batch, Z from the global first batch), Barlow Twins, VICReg, DINO (its
center), CLIP and SigLIP (chunked over the replicas' texts), the framework's AMDIM
(global targets, drawn source locations), CPC and YADIM (targets gathered over the
replicas), the linear stage and SupCon with
per-replica BatchNorm (`local_bn`) for two steps on the same global batches
under MirroredStrategy on
REPLICAS replicas (and, for 1, no strategy), with synchronized BatchNorm. Writes, per
(case, strategy), how far the replicas' copies of each weight are apart, the gradients of
the first step (and the weights it started from),
the losses and metrics `fit` reported and every final weight (BatchNorm moving
statistics, teacher copies, queue and pointers included), the number of samples
(images x views) in a global batch, and for the linear stage the results of
`evaluate`, to an .npz file in the directory given
as argv[1]. One replica count per process: TensorFlow's collective ops do not
support two MirroredStrategies over different device sets in one process.
Usage: python tests/_replica_steps.py OUT_DIR REPLICAS [case ...]
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 4)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from supcon_tf import distribute, encoders, losses, methods  # noqa: E402
from supcon_tf.heads import ProjectionHead  # noqa: E402

GLOBAL_BATCH = 16
STEPS = 2
LEARNING_RATE = 0.1
NUM_CLASSES = 6


def data(case):
    rng = np.random.default_rng(0)
    n = GLOBAL_BATCH * STEPS
    labels = rng.integers(0, NUM_CLASSES if case == "linear" else 4, size=n)
    images = (rng.random((n, 8, 8, 1)) + labels[:, None, None, None] / 4).astype("float32")
    if case == "linear":
        return images, labels
    if case in ("clip", "siglip"):  # Captions naming the class: <start> class <end> <pad>.
        tokens = np.stack([np.full(n, 2), labels + 4, np.full(n, 3), np.zeros(n)], 1)
        return {"images": images, "tokens": tokens.astype("int32")}, labels
    views = np.stack([images + 0.1 * rng.standard_normal(images.shape) for _ in range(2)], 1)
    if case == "instdisc":  # Each sample's bank row, in another order than the samples.
        return views.astype("float32"), dict(labels=labels, index=rng.permutation(n))
    return views.astype("float32"), labels


def build(case):
    sync = case != "local_bn"  # local_bn: SupCon with per-replica BatchNorm statistics.
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16,
                           sync_batch_norm=sync)
    if case == "cpc":  # A 3 x 3 grid of 4 x 4 patches (no per-patch augmentation: each
        # replica would draw its own), negatives: every patch of the global batch.
        encoder = encoders.get("patches", input_shape=(8, 8, 1), encoder="small_cnn",
                               encoder_kwargs=dict(widths=(8, 16), dim=16,
                                                   sync_batch_norm=True),
                               patch_size=4, overlap=2, augmentation=None)
    if case == "linear":
        return methods.LinearClassifier(encoder, num_classes=NUM_CLASSES)
    head = ProjectionHead(hidden_dims=(16,), output_dim=8, sync_batch_norm=sync,
                          output_batch_norm=case == "simsiam",
                          normalize=case not in ("byol", "simsiam", "nnclr", "barlow_twins",
                                                 "vicreg", "framework"))
    if case == "metric":  # Batch-hard triplets over both views, local anchors vs global.
        model = methods.MetricLearning(encoder, head, loss=losses.TripletLoss(margin=0.5))
    elif case == "metric_xbm":  # Semi-hard triplets against the batch and a memory of 48
        # rows (step 1 fills 32; step 2, xbm_start_step=1, reads them), mean over triplets.
        model = methods.MetricLearning(encoder, head, xbm_size=48, xbm_start_step=1,
                                       loss=losses.TripletLoss(margin=0.5, mining="semi_hard"))
    elif case == "proxy_anchor":  # A global-batch loss, proxies at 10x the learning rate.
        model = methods.MetricLearning(encoder, head,
                                       loss=losses.ProxyAnchorLoss(4, lr_multiplier=10.0))
    elif case in ("moco", "supcon_moco"):  # 2 x 16 keys through 24 rows: the 2nd enqueue wraps.
        model = methods.get(case, encoder=encoder, head=head, queue_size=24, momentum=0.9)
    elif case == "byol":
        model = methods.BYOL(encoder, head, momentum=0.9, total_steps=STEPS,
                             predictor_hidden_dims=(16,))
    elif case == "simsiam":  # Projector with output BN, a bottleneck predictor.
        model = methods.SimSiam(encoder, head, predictor_dim=4)
    elif case == "nnclr":  # Step 2 searches the 16 rows of step 1; its enqueue wraps.
        model = methods.NNCLR(encoder, head, queue_size=24, predictor_hidden_dims=(16,))
    elif case in ("clip", "siglip"):  # Two towers; SigLIP's loss chunked by replica.
        model = methods.CLIP(encoder, ProjectionHead(hidden_dims=(), output_dim=8), loss=case,
                             text_encoder=dict(vocab_size=8, context_length=4, width=8,
                                               num_layers=1, num_heads=2))
        model({"images": keras.ops.zeros((2, 8, 8, 1)), "tokens": keras.ops.zeros((2, 4))})
        return model
    elif case == "instdisc":  # A row per sample, 8 noise rows each; both views are queries.
        # (lambda = 1, not 30: 60 x |f - v| gradients would move the step-2 BatchNorm
        # statistics further than the comparison's bound for them allows.)
        model = methods.InstDisc(encoder, head, bank_size=GLOBAL_BATCH * STEPS, num_noise=8,
                                 loss=losses.InstDiscLoss(proximal=1.0))
    elif case == "framework":  # AMDIM: every replica's local maps are negatives; the 5-5
        # source locations drawn for the global batch.
        model = methods.Framework(encoder, head, loss=losses.NCELoss(tclip=20.0,
                                                                     score_penalty=5e-2),
                                  extraction="amdim", similarity="scaled_dot",
                                  extraction_kwargs=dict(maps={"r1": "output", "r5": "block2",
                                                               "r7": "block1"}, seed=0))
    elif case == "cpc":  # The framework's CPC: rows above predict 1 and 2 rows below,
        # columns on the right the columns 1 and 2 to their left.
        model = methods.Framework(encoder, head, loss=losses.NCELoss(), extraction="cpc",
                                  similarity="dot", extraction_kwargs=dict(
                                      steps=2, directions=("down", "left"),
                                      context=dict(width=8, num_blocks=1)))
    elif case == "yadim":  # The framework's YADIM: the two views' last feature maps.
        model = methods.Framework(encoder, head, loss=losses.NCELoss(), extraction="amdim",
                                  similarity="dot", extraction_kwargs=dict(
                                      maps={"last": "block2"}, comparisons=("last-last",),
                                      source_location="all"))
    elif case == "swav":  # Sinkhorn-Knopp on the global batch, with a queue from step 2.
        model = methods.SwAV(encoder, head, num_prototypes=6, queue_size=16)
    elif case in ("barlow_twins", "vicreg"):  # Batch statistics of the global batch.
        model = methods.get(case, encoder=encoder, head=head)
    elif case == "dino":  # Center over the global batch; the teacher's BN synchronized.
        model = methods.DINO(encoder, head, out_dim=6, momentum=0.9, total_steps=STEPS,
                             loss=losses.DINOLoss(teacher_temperature=0.05,
                                                  warmup_teacher_temperature=0.04,
                                                  warmup_teacher_temperature_steps=1))
    else:
        model = (methods.SupCon if case == "supcon" else methods.SimCLR)(encoder, head)
    model(keras.ops.zeros((2, 2, 8, 8, 1)))
    return model


class _Recorder(keras.callbacks.Callback):
    """Keeps the trainable weights after the first step and every step's logs."""

    def __init__(self):
        super().__init__()
        self.logs, self.after_first = [], None

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append({k: float(v) for k, v in logs.items()})
        if batch == 0:
            self.after_first = [np.array(w) for w in self.model.trainable_weights]


def main(out_dir, replicas, cases):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 4, devices
    # One strategy per process: a second one over the same devices reuses its
    # collective keys and clashes with the first one's collectives.
    strategies = {f"r{replicas}": distribute.get_strategy("mirrored",
                                                          devices=devices[:replicas])}
    if replicas == 1:
        strategies["none"] = tf.distribute.get_strategy()
    for case in cases:
        keras.utils.set_random_seed(0)
        reference = build(case)
        reference(keras.ops.zeros((2, 8, 8, 1)))
        initial = reference.get_weights()
        x, y = data(case)
        for label, strategy in strategies.items():
            with strategy.scope():
                model = build(case)
                model(keras.ops.zeros((2, 8, 8, 1)))
                model.set_weights(initial)
                model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))
            before = [np.array(w) for w in model.trainable_weights]
            recorder = _Recorder()
            model.fit(x, y, batch_size=GLOBAL_BATCH, shuffle=False, verbose=0,
                      callbacks=[recorder])
            # Plain SGD: the first step's gradient is (before - after) / learning rate.
            out = {f"grad:{i}": (b - a) / LEARNING_RATE
                   for i, (b, a) in enumerate(zip(before, recorder.after_first))}
            # What the comparison's bound needs: the start weights (the recovery above
            # loses eps * |w| / learning rate) and the samples one step's mean reduces.
            out.update({f"start:{i}": b for i, b in enumerate(before)})
            out["learning_rate"] = np.array(LEARNING_RATE)
            out["samples"] = np.array(GLOBAL_BATCH * (x.shape[1] if np.ndim(x) == 5 else 1))
            out.update({f"weight:{i}": np.array(w) for i, w in enumerate(model.weights)})
            # Each weight's learning rate (the base rate times any per-variable multiplier,
            # e.g. Proxy-Anchor's proxies; 0 for weights no optimizer step moves): the
            # gradients' rounding reaches the weights scaled by it.
            factors = model.optimizer.__dict__.get("_lr_multipliers", {})
            rates = {id(w): LEARNING_RATE * factors.get(model.optimizer._var_key(w), 1.0)
                     for w in model.trainable_weights}
            out.update({f"rate:{i}": np.array(rates.get(id(w), 0.0))
                        for i, w in enumerate(model.weights)})
            out.update({f"grad_rate:{i}": np.array(rates[id(w)])
                        for i, w in enumerate(model.trainable_weights)})
            out.update({f"metric:{k}": np.array([logs[k] for logs in recorder.logs])
                        for k in recorder.logs[0]})
            if case == "linear":  # Linear evaluation's reported numbers.
                scores = model.evaluate(x, y, batch_size=GLOBAL_BATCH, verbose=0,
                                        return_dict=True)
                out.update({f"metric:eval_{k}": np.array(v) for k, v in scores.items()})
            # How far apart the replicas' copies of each weight are (a checkpoint holds
            # replica 0's): 0 for every weight, BatchNorm statistics included.
            out.update({f"spread:{i}": np.array(max(
                float(np.abs(np.asarray(c) - np.asarray(w)).max())
                for c in getattr(w.value, "values", (w.value,))))
                for i, w in enumerate(model.weights) if w.dtype.startswith("float")})
            out["names"] = np.array([w.path for w in model.weights])
            out["replicas"] = np.array(strategy.num_replicas_in_sync)
            np.savez(os.path.join(out_dir, f"{case}_{label}.npz"), **out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]),
         sys.argv[3:] or ["supcon", "simclr", "metric", "metric_xbm", "proxy_anchor", "moco",
                          "supcon_moco", "byol", "simsiam", "swav", "nnclr", "instdisc",
                          "barlow_twins", "vicreg", "dino", "clip", "siglip", "framework",
                          "cpc", "yadim", "linear"])
