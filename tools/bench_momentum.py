"""Cost of a method's step over SimCLR's on the same encoder: MoCo v2, BYOL, NNCLR, DINO, ...

Rows (one process, the steps of all methods alternated so that each sees the same machine
state; median step shown; `--methods` picks them, simclr first):
  simclr    supcon_tf.methods.SimCLR(resnet, ProjectionHead): the baseline step
  moco      supcon_tf.methods.MoCo, queue 4,096: + key-encoder forward, EMA, enqueue
  byol      supcon_tf.methods.BYOL: + predictor, target forward on both views, EMA
  nnclr     supcon_tf.methods.NNCLR, support set 65,536: + predictor, nearest-neighbour
            search of both views in the support set, enqueue
  dino      supcon_tf.methods.DINO with the paper's head (MLP 2048-2048-256, GELU, 65,536
            prototypes): + teacher forward on both (global) views, EMA, center
  ema+queue MoCo's `teacher.update()` and `queue.enqueue(keys)` alone, compiled, per step
  clip      supcon_tf.methods.CLIP (`--methods simclr,clip,siglip`): the same image tower on
  siglip    one image, plus a text Transformer on a caption, the CLIP or SigLIP loss
  nn+queue  NNCLR's nearest-neighbour search of both views and its enqueue alone, compiled
The "vs SimCLR" column is the step-time ratio; for the ema+queue (nn+queue) row it is its
share of a MoCo (NNCLR) step (the issue's target: under 5%). `--methods` compares other
registered methods with SimCLR the same way, on the same encoder and head shape (e.g. the
redundancy-reduction methods: `--methods simclr,barlow_twins,vicreg`). A separate tool from
bench_step.py (SupCon vs bare Keras vs PyTorch), which it reuses for the BENCHMARKS.md
section.

  python tools/bench_momentum.py             # ResNet-18, CIFAR stem, batch 64, appended
  python tools/bench_momentum.py --methods simclr,nnclr   # SimCLR and NNCLR only
  python tools/bench_momentum.py --quick     # small CNN, seconds: checks the tool runs
  python tools/bench_momentum.py --methods simclr,barlow_twins,vicreg
  python tools/bench_momentum.py --methods simclr,dino   # the DINO row
  python tools/bench_momentum.py --methods simclr,clip,siglip   # the image-text section
"""

DEFAULT_METHODS = ("simclr", "moco", "byol")
# Methods whose loss takes the projector's raw output (no L2 normalization in the head).
UNNORMALIZED = ("byol", "nnclr", "barlow_twins", "vicreg")

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import (ROOT, append_section, cifar_encoder, cifar_encoder_name,  # noqa: E402
                        command_line, markdown_table)

CONTEXT = 16  # Caption tokens of the clip / siglip rows.


def build(name, width, size, batch, quick=False):
    import keras

    from supcon_tf import methods
    from supcon_tf.heads import ProjectionHead

    encoder = cifar_encoder(width, size, quick)
    head = ProjectionHead(output_dim=128, normalize=name not in UNNORMALIZED)
    if name == "dino":  # The paper's head; 512 prototypes for the tiny --quick model.
        head = ProjectionHead((2048, 2048), 256, use_batch_norm=False, activation="gelu")
    kwargs = dict(moco=dict(queue_size=max(4096, 2 * batch)),
                  byol=dict(total_steps=1000, predictor_hidden_dims=(512,)),
                  nnclr=dict(queue_size=65536, predictor_hidden_dims=(512,)),
                  dino=dict(total_steps=1000, out_dim=512 if width < 1 else 65536)
                  ).get(name, {})
    if name in ("clip", "siglip"):  # Image tower + a 4-layer, 256-wide text Transformer.
        from supcon_tf.methods.clip import CLIP

        model = CLIP(encoder, ProjectionHead(hidden_dims=(), output_dim=128), loss=name,
                     text_encoder=dict(vocab_size=1000, context_length=CONTEXT,
                                       width=256 if size > 16 else 16, num_layers=4,
                                       num_heads=4))
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        return model
    model = methods.get(name, encoder=encoder, head=head, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def measure(args):
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    views = tf.constant(rng.random((args.batch, 2, args.size, args.size, 3), np.float32))
    labels = tf.constant(rng.integers(0, 10, args.batch).astype("int32"))
    # Image-text pairs: one image (not two views) and a caption of CONTEXT tokens.
    tokens = rng.integers(4, 1000, (args.batch, CONTEXT)).astype("int32")
    tokens[:, 0], tokens[:, -1] = 2, 3
    pairs = {"images": views[:, 0], "tokens": tf.constant(tokens)}
    models = {n: build(n, args.width, args.size, args.batch, args.quick)
              for n in args.methods}
    steps = {n: (lambda m=m, x=(pairs if n in ("clip", "siglip") else views):
                 float(m.train_on_batch(x, labels))) for n, m in models.items()}
    keys = tf.constant(rng.standard_normal((args.batch, 128)).astype("float32"))
    if "moco" in models:
        moco = models["moco"]

        @tf.function
        def ema_and_queue():
            moco.teacher.update()
            moco.queue.enqueue(keys)
            return moco.teacher.step.value

        steps["ema+queue"] = lambda: int(ema_and_queue())
    if "nnclr" in models:
        from supcon_tf.losses import nearest_neighbours

        nnclr = models["nnclr"]
        nnclr.build(tuple(views.shape))  # Its support set is made by `build`; filled here.
        nnclr.queue.enqueue(tf.constant(rng.standard_normal((65536, 128)).astype("float32")))

        @tf.function
        def nn_and_queue():  # Both views' searches, then the enqueue of view 0.
            found = [nearest_neighbours(keys + v, nnclr.queue.values, nnclr.queue.filled)
                     for v in range(2)]
            nnclr.queue.enqueue(keys)
            return tf.reduce_sum(found[0]) + tf.reduce_sum(found[1])

        steps["nn+queue"] = lambda: float(nn_and_queue())
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    times = {n: [] for n in steps}
    order = list(steps)
    for i in range(args.steps):
        for name in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    median = {n: statistics.median(t) for n, t in times.items()}
    params = {n: int(sum(np.prod(w.shape) for w in m.trainable_weights))
              for n, m in models.items()}
    rows = []
    share_of = {"ema+queue": "moco", "nn+queue": "nnclr"}
    for name in order:
        base = median[share_of.get(name, "simclr")]
        ratio = f"{100 * median[name] / base:.1f}% of {share_of[name]}" if name in share_of \
            else f"{median[name] / base:.2f}x"
        spread = (max(times[name]) - min(times[name])) / median[name]
        rows.append([name, args.batch, f"{median[name]:.4f}", f"{100 * spread:.0f}%", ratio,
                     f"{params[name]:,}" if name in params else "-"])
    keras.backend.clear_session()
    return markdown_table(["method", "batch", "step (s)", "spread", "vs SimCLR",
                           "trainable params"], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and steps (seconds)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--append", default=None,
                        help="markdown file (default: BENCHMARKS.md, none with --quick)")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help="registered methods to time, comma-separated; simclr first")
    args = parser.parse_args(argv)
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if args.methods[:1] != ("simclr",):
        parser.error(f"--methods must start with simclr (the baseline); received "
                     f"{','.join(args.methods)!r}.")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    args.width, args.size = (0.125, 16) if args.quick else (1.0, 32)
    if args.quick:
        args.batch = 8
    args.steps = args.steps or (2 if args.quick else 10)
    text = measure(args)
    print(text)
    append = args.append or (None if args.quick else os.path.join(ROOT, "BENCHMARKS.md"))
    if append:
        notes = [f"{args.warmup} warm-up step(s) each, then {args.steps} timed steps per "
                 "method, alternated (A B C D D C B A ...) in one process, TensorFlow "
                 f"backend, no XLA; the median step is shown. "
                 f"{cifar_encoder_name(args.width, args.quick)} on "
                 f"{args.size}x{args.size} images, 2 views (CLIP / SigLIP: 1 image and a "
                 f"{CONTEXT}-token caption into a 4-layer, 256-wide text Transformer)."]
        title = ("Momentum teacher: MoCo v2 and BYOL vs SimCLR (CPU)"
                 if args.methods == DEFAULT_METHODS
                 else f"Step cost: {', '.join(args.methods[1:])} vs SimCLR (CPU)")
        append_section(append, title,
                       command_line("bench_momentum.py", argv), notes + args.note, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
