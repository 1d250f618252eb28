"""Cost of the momentum teacher over a SimCLR step: MoCo v2 and BYOL vs SimCLR, in one process.

Rows (one process, the steps of all methods alternated so that each sees the same machine
state; median step shown):
  simclr    supcon_tf.methods.SimCLR(resnet, ProjectionHead): the baseline step
  moco      supcon_tf.methods.MoCo, queue 4,096: + key-encoder forward, EMA, enqueue
  byol      supcon_tf.methods.BYOL: + predictor, target forward on both views, EMA
  ema+queue MoCo's `teacher.update()` and `queue.enqueue(keys)` alone, compiled, per step
  clip      supcon_tf.methods.CLIP (`--methods simclr clip siglip`): the same image tower on
  siglip    one image, plus a text Transformer on a caption, the CLIP or SigLIP loss
The "vs SimCLR" column is the step-time ratio; for the ema+queue row it is its share of a
MoCo step (the issue's target: under 5%). A separate tool from bench_step.py (SupCon
vs bare Keras vs PyTorch), which it reuses for the BENCHMARKS.md section.

  python tools/bench_momentum.py             # ResNet-18, CIFAR stem, batch 64, appended
  python tools/bench_momentum.py --quick     # tiny model, seconds: checks the tool runs
  python tools/bench_momentum.py --methods simclr clip siglip   # the image-text section
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import ROOT, append_section, command_line, markdown_table  # noqa: E402

CONTEXT = 16  # Caption tokens of the clip / siglip rows.


def build(name, width, size, batch):
    import keras

    from supcon_tf import encoders, methods
    from supcon_tf.heads import ProjectionHead

    encoder = encoders.resnet(18, stem="cifar", width_multiplier=width,
                              input_shape=(size, size, 3))
    head = ProjectionHead(output_dim=128, normalize=name != "byol")
    kwargs = dict(moco=dict(queue_size=max(4096, 2 * batch)),
                  byol=dict(total_steps=1000, predictor_hidden_dims=(512,))).get(name, {})
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
    models = {n: build(n, args.width, args.size, args.batch) for n in args.methods}
    steps = {n: (lambda m=m, x=(pairs if n in ("clip", "siglip") else views):
                 float(m.train_on_batch(x, labels))) for n, m in models.items()}
    if "moco" in models:
        moco = models["moco"]
        keys = tf.constant(rng.standard_normal((args.batch, 128)).astype("float32"))

        @tf.function
        def ema_and_queue():
            moco.teacher.update()
            moco.queue.enqueue(keys)
            return moco.teacher.step.value

        steps["ema+queue"] = lambda: int(ema_and_queue())
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
    for name in order:
        base = median["moco"] if name == "ema+queue" else median["simclr"]
        ratio = f"{100 * median[name] / base:.1f}% of moco" if name == "ema+queue" \
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
    parser.add_argument("--methods", nargs="+", default=["simclr", "moco", "byol"],
                        choices=["simclr", "moco", "byol", "clip", "siglip"],
                        help="simclr first (the baseline); clip/siglip: image-text pairs")
    args = parser.parse_args(argv)
    if args.methods[0] != "simclr":
        parser.error(f"--methods must start with simclr (the baseline); got {args.methods}.")
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
                 "backend, no XLA; the median step is shown. ResNet-18 (CIFAR stem) on "
                 f"{args.size}x{args.size} images, 2 views (CLIP / SigLIP: 1 image and a "
                 f"{CONTEXT}-token caption into a 4-layer, 256-wide text Transformer)."]
        title = ("Momentum teacher: MoCo v2 and BYOL vs SimCLR (CPU)"
                 if "moco" in args.methods else "Image-text: CLIP and SigLIP vs SimCLR (CPU)")
        append_section(append, title,
                       command_line("bench_momentum.py", argv), notes + args.note, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
