"""Two-view augmentation throughput (images/s): on the host (tf.data) vs on the device path.

host:   make_pretrain_dataset(augment_on="host") -> views, iterated in Python.
device: make_pretrain_dataset(augment_on="device") -> uint8 batches, views drawn by
        views.MultiView(aug, 2) inside one compiled function (XLA where the augmenter
        supports it), the way a method's train step draws them.

    python tools/bench_views.py            # measures, appends a section to BENCHMARKS.md
    python tools/bench_views.py --quick    # a few tiny batches, prints the table only
"""

import argparse
import datetime
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import append_section, command_line  # noqa: E402

CASES = (("digits", (8, 8), 1), ("cifar", (32, 32), 3), ("simclr", (64, 64), 3))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run; does not write")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed batches per row")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    return parser.parse_args(argv)


def compiled_views(multiview):
    """A function uint8 batch -> (mean of the views), compiled on the active backend."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        state = None

        @jax.jit
        def step(state, x):
            views, state = multiview.stateless_call([], state, x / 255.0, training=True)
            return views.mean(), state

        def run(x):
            nonlocal state
            if state is None:
                multiview(x[:1])
                state = [v.value for v in multiview.non_trainable_variables]
            out, state = step(state, jax.numpy.asarray(x))
            return out

        return run, True
    import tensorflow as tf

    jit = all(layer.supports_jit for layer in multiview._flatten_layers())
    fn = tf.function(lambda x: tf.reduce_mean(multiview(x, training=True)), jit_compile=jit)
    return fn, jit


def measure(policy, size, channels, batch, steps, path):
    import numpy as np

    from supcon_tf import data, views

    n = batch * 4
    images = np.random.default_rng(0).integers(0, 256, (n, *size, channels), dtype=np.uint8)
    ds, _ = data.from_arrays(images, np.arange(n) % 10)
    aug = views.get(policy, image_size=size, seed=0)
    train = data.make_pretrain_dataset(ds, batch_size=batch, augmenter=aug, augment_on=path,
                                       shuffle_buffer=0)
    it = iter(train)
    if path == "host":
        step, jit = (lambda x: x.numpy().mean()), None
    else:
        step, jit = compiled_views(views.MultiView(aug, 2))
    for _ in range(2):  # Warm-up: tracing, compilation, pipeline start.
        float(step(next(it)[0]))
    start = time.perf_counter()
    for _ in range(steps):
        out = step(next(it)[0])
    float(out)
    return batch * steps / (time.perf_counter() - start), jit


def table(rows):
    lines = ["| policy | image | batch | host images/s | device images/s | device XLA | "
             "device / host |", "|---|---|---|---:|---:|---|---:|"]
    for policy, size, channels, batch, host, device, jit in rows:
        lines.append(f"| {policy} | {size[0]}x{size[1]}x{channels} | {batch} | {host:,.0f} | "
                     f"{device:,.0f} | {'yes' if jit else 'no'} | {device / host:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    batch, steps = (16, 2) if args.quick else (args.batch_size, args.steps)
    cases = CASES[:2] if args.quick else CASES
    rows = []
    for policy, size, channels in cases:
        host, _ = measure(policy, size, channels, batch, steps, "host")
        device, jit = measure(policy, size, channels, batch, steps, "device")
        rows.append((policy, size, channels, batch, host, device, jit))
        print(f"measured {policy}: host {host:.0f}/s, device {device:.0f}/s", file=sys.stderr)
    text = table(rows)
    print(text)
    if not args.quick:
        import keras

        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        append_section(
            args.output, f"Two-view augmentation throughput ({datetime.date.today()})",
            command_line("bench_views.py", argv),
            [f"Keras backend {keras.backend.backend()}; load average {load} when done.",
             f"Images/s of two views each (each image counted once), after 2 warm-up batches, "
             f"{steps} timed batches. Without a GPU the \"device\" is the same CPU: the column "
             f"shows the compiled in-step path, not an accelerator."],
            text)
        print(f"appended to {args.output}")


if __name__ == "__main__":
    main()
