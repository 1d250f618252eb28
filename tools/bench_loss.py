"""Time and peak memory of the plain vs the blocked contrastive loss, forward + backward.

For each number of views (samples x 2 views, 128-D embeddings, 100 classes) it compiles
value-and-gradient of the SupCon loss (`tf.function` on TensorFlow, `jax.jit` on JAX),
then times it. Peak memory is the device allocator's peak on a GPU and the growth of
the process's peak resident memory on a CPU (one process per implementation, sizes in
increasing order, so each size's peak is the high-water mark when it ran). The table
also gives how each grows: the slope of log(time) and log(memory) against log(views)
between the two largest sizes each path ran.

  python tools/bench_loss.py                      # 1k .. 16k views on CPU, 1k .. 64k on a GPU
  python tools/bench_loss.py --quick              # tiny sizes, seconds
"""

import argparse
import json
import math
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import (ROOT, append_section, command_line, has_gpu,  # noqa: E402
                        markdown_table, run_worker)

IMPLS = ("plain", "blocked")


def peak_bytes():
    """Peak bytes so far: the GPU allocator's when there is one, else peak RSS."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats()
        if stats and "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"]
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return tf.config.experimental.get_memory_info("GPU:0")["peak"]
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def loss_and_grad_fn(impl, block_size):
    """A compiled function features, labels -> (sum of the loss, gradient)."""
    import keras

    from supcon_tf.losses import contrastive_loss

    def loss(features, labels):
        size = 0 if impl == "plain" else block_size
        return keras.ops.sum(contrastive_loss(features, labels, block_size=size))

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(jax.value_and_grad(loss))
    import tensorflow as tf

    @tf.function
    def value_and_grad(features, labels):
        with tf.GradientTape() as tape:
            tape.watch(features)
            value = loss(features, labels)
        return value, tape.gradient(value, features)

    return value_and_grad


def worker(config):
    """Runs one implementation over increasing sizes; stops at the first failure."""
    import keras
    import numpy as np

    results = []
    baseline = peak_bytes()
    for views in config["sizes"]:
        rng = np.random.default_rng(0)
        features = rng.standard_normal((views // 2, 2, config["dim"])).astype("float32")
        features /= np.linalg.norm(features, axis=-1, keepdims=True)
        labels = rng.integers(0, 100, views // 2).astype("int32")
        features, labels = keras.ops.convert_to_tensor(features), keras.ops.convert_to_tensor(labels)
        fn = loss_and_grad_fn(config["impl"], config["block_size"])
        try:
            value, grad = fn(features, labels)  # Compiles.
            keras.ops.convert_to_numpy(grad)
            start = time.perf_counter()
            for _ in range(config["repeats"]):
                value, grad = fn(features, labels)
            keras.ops.convert_to_numpy(grad)
            seconds = (time.perf_counter() - start) / config["repeats"]
        except Exception as error:  # Out of memory, typically: the table says so.
            results.append({"views": views, "error": type(error).__name__})
            break
        results.append({"views": views, "seconds": seconds,
                        "peak_bytes": max(peak_bytes() - baseline, 0), "loss": float(value)})
        print(f"{config['impl']} {views}: {results[-1]}", file=sys.stderr, flush=True)
    return results


def growth(rows, key):
    """Slope of log(key) vs log(views) between the last two measured sizes."""
    rows = [r for r in rows if r.get(key)]
    if len(rows) < 2:
        return "n/a"
    a, b = rows[-2], rows[-1]
    return f"{math.log(b[key] / a[key]) / math.log(b['views'] / a['views']):.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--backend", choices=("auto", "tensorflow", "jax"), default="auto")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="numbers of views (default: 1k .. 16k on CPU, 1k .. 64k on GPU)")
    parser.add_argument("--max-plain-views", type=int, default=None,
                        help="largest size the plain loss tries (default 8192 on CPU)")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--append", default=None,
                        help="markdown file to append to (default BENCHMARKS.md; none with --quick)")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    gpu = has_gpu()
    backend = {"auto": "jax" if gpu else "tensorflow"}.get(args.backend, args.backend)
    if args.quick:
        sizes, args.dim, args.block_size = args.sizes or [64, 128], 16, 32
    else:
        sizes = args.sizes or [2**k for k in range(10, 17 if gpu else 15)]
    max_plain = args.max_plain_views or (max(sizes) if gpu or args.quick else 8192)
    repeats = args.repeats or (1 if args.quick else 3)
    measured = {}
    for impl in IMPLS:
        todo = [s for s in sizes if impl == "blocked" or s <= max_plain]
        config = dict(impl=impl, sizes=todo, dim=args.dim, block_size=args.block_size,
                      repeats=repeats, backend=backend)
        print(f"measuring {impl} on {todo} views ...", file=sys.stderr, flush=True)
        result = run_worker(os.path.abspath(__file__), config, args.timeout)
        measured[impl] = result if isinstance(result, list) else [dict(result, views=todo[0])]

    header = ["views", "plain (s)", "plain peak MB", "blocked (s)", "blocked peak MB",
              "blocked / plain time", "same loss"]
    rows = []
    for views in sizes:
        cells, found = [views], {}
        for impl in IMPLS:
            found[impl] = next((r for r in measured[impl] if r.get("views") == views), None)
            r = found[impl]
            if r is None:
                cells += ["not run", "-"]
            elif "error" in r:
                cells += [r["error"], "-"]
            else:
                cells += [f"{r['seconds']:.4f}", f"{r['peak_bytes'] / 2**20:.0f}"]
        ok = all(r and "seconds" in r for r in found.values())
        cells.append(f"{found['blocked']['seconds'] / found['plain']['seconds']:.2f}" if ok else "-")
        cells.append(("yes" if math.isclose(found["plain"]["loss"], found["blocked"]["loss"],
                                            rel_tol=1e-4) else "NO") if ok else "-")
        rows.append(cells)
    rows.append(["growth exponent (last two sizes)",
                 growth(measured["plain"], "seconds"), growth(measured["plain"], "peak_bytes"),
                 growth(measured["blocked"], "seconds"), growth(measured["blocked"], "peak_bytes"),
                 "-", "-"])
    text = markdown_table(header, rows)
    print(text)
    append = args.append or (None if args.quick else os.path.join(ROOT, "BENCHMARKS.md"))
    if append:
        command = command_line("bench_loss.py", argv)
        notes = [f"SupCon loss value and gradient, {args.dim}-D embeddings, 2 views, 100 classes, "
                 f"block size {args.block_size}, Keras backend {backend}, mean of {repeats} "
                 "runs after a compiling one. Peak memory: "
                 + ("GPU allocator peak." if gpu else "growth of the process's peak RSS.")]
        append_section(append, "Contrastive loss: plain vs blocked", command,
                       notes + args.note, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
