"""One SupCon epoch end to end on synthetic CIFAR-sized data: host vs on-device augmentation.

50,000 random uint8 32x32 images with 10 labels go through `supcon_tf.data.from_arrays`
and `make_pretrain_dataset` with the CIFAR augmentations (`views.get("cifar")`), drawn
either by `tf.data` on the host (`augment_on="host"`) or inside the compiled step by the
model's `augmenter=views.MultiView(aug, 2)` (`augment_on="device"`), into a ResNet-18
(CIFAR stem) SupCon model (Keras backend: JAX with a GPU, else TensorFlow; the input
pipeline is `tf.data` either way). Per mode (each in its own process) it reports
  epoch      seconds of one `fit` epoch (after a compiling warm-up),
  compute    the same number of steps on one batch held in memory (no input pipeline),
  input      the pipeline alone, iterated for the same number of batches,
  wait share 1 - compute / epoch: the share of the epoch spent waiting for input.

  python tools/bench_epoch.py                          # the full run, appended to BENCHMARKS.md
  python tools/bench_epoch.py --images 5000 --width 0.25 # a scaled-down CPU run
  python tools/bench_epoch.py --quick                  # small CNN, tiny data, seconds
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import (ROOT, append_section, cifar_encoder, cifar_encoder_name,  # noqa: E402
                        command_line, has_gpu, markdown_table, run_worker)

MODES = ("host", "device")
MISSING = "needs supcon_tf.views / supcon_tf.data, which this checkout lacks ({})"


def missing_modules():
    """The augmentation / data API this tool needs, if any of it is missing."""
    try:
        from supcon_tf import data, views
    except ImportError as error:
        return str(error)
    needed = [(views, "get"), (views, "MultiView"), (data, "from_arrays"),
              (data, "make_pretrain_dataset")]
    absent = [f"{m.__name__}.{name}" for m, name in needed if not hasattr(m, name)]
    return ", ".join(absent) if absent else None


def worker(config):
    missing = missing_modules()
    if missing:
        return {"error": MISSING.format(missing)}
    import keras
    import numpy as np
    import tensorflow as tf

    from supcon_tf import data, methods, views
    from supcon_tf.heads import ProjectionHead

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (config["images"], 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, config["images"])
    ds, _ = data.from_arrays(images, labels)
    augmenter = views.get("cifar", image_size=(32, 32))
    mode, batch = config["mode"], config["batch"]
    train = data.make_pretrain_dataset(ds, batch_size=batch, num_views=2, augmenter=augmenter,
                                       augment_on=mode)
    steps = config["images"] // batch
    encoder = cifar_encoder(config["width"], 32, config.get("quick", False))
    model = methods.SupCon(encoder, ProjectionHead(output_dim=128),
                           augmenter=views.MultiView(augmenter, 2) if mode == "device" else None)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  jit_compile=config["xla"])
    model.fit(train, steps_per_epoch=2, epochs=1, verbose=0)  # Compiles.

    start = time.perf_counter()
    model.fit(train, steps_per_epoch=steps, epochs=1, verbose=0)
    epoch = time.perf_counter() - start

    one_batch = next(iter(train))
    held = tf.data.Dataset.from_tensors(one_batch).repeat()
    start = time.perf_counter()
    model.fit(held, steps_per_epoch=steps, epochs=1, verbose=0)
    compute = time.perf_counter() - start

    start = time.perf_counter()
    for _ in train.take(steps):
        pass
    input_only = time.perf_counter() - start
    return {"steps": steps, "epoch_s": epoch, "compute_s": compute, "input_s": input_only,
            "wait_share": max(0.0, 1.0 - compute / epoch)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and data (seconds)")
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--width", type=float, default=1.0, help="ResNet-18 width multiplier")
    parser.add_argument("--backend", choices=("auto", "tensorflow", "jax"), default="auto",
                        help="Keras backend (auto: jax with a GPU, else tensorflow)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--xla", choices=("on", "off", "auto"), default="auto",
                        help="jit_compile (auto: Keras' choice)")
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--append", default=None,
                        help="markdown file to append to (default BENCHMARKS.md; none with --quick)")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.quick:
        args.images, args.batch, args.width = 64, 16, 0.125
    backend = {"auto": "jax" if has_gpu() else "tensorflow"}.get(args.backend, args.backend)
    xla = {"on": True, "off": False, "auto": "auto"}[args.xla]
    rows = []
    for mode in args.modes:
        print(f"measuring augment_on={mode} ...", file=sys.stderr, flush=True)
        config = dict(mode=mode, images=args.images, batch=args.batch, width=args.width,
                      xla=xla, backend=backend, quick=args.quick)
        r = run_worker(os.path.abspath(__file__), config, args.timeout)
        if "error" in r and r["error"].startswith(MISSING[:20]):
            print(f"bench_epoch: {r['error']}", file=sys.stderr)
            return 2
        if "error" in r:
            rows.append([mode, args.images, args.batch, r["error"], "-", "-", "-", "-"])
            continue
        # Milliseconds shown: the quick run's compute takes a few tens of them, which
        # one decimal printed as 0.0 on a fast CPU.
        rows.append([mode, args.images, args.batch, f"{r['epoch_s']:.3f}",
                     f"{args.images / r['epoch_s']:.0f}", f"{r['compute_s']:.3f}",
                     f"{r['input_s']:.3f}", f"{100 * r['wait_share']:.0f}%"])
    header = ["augment on", "images", "batch", "epoch (s)", "images/s", "compute only (s)",
              "input only (s)", "input-wait share"]
    text = markdown_table(header, rows)
    print(text)
    append = args.append or (None if args.quick else os.path.join(ROOT, "BENCHMARKS.md"))
    if append:
        command = command_line("bench_epoch.py", argv)
        notes = [f"{cifar_encoder_name(args.width, args.quick)} SupCon, 2 views, SGD momentum, "
                 f"jit_compile={args.xla}, Keras backend {backend}; "
                 + ("GPU: device augmentation runs on it." if has_gpu() else
                    "CPU only: the host pipeline and the 'device' share the same cores.")]
        append_section(append, "SupCon epoch: host vs on-device augmentation", command,
                       notes + args.note, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
