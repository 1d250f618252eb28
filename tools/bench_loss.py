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
  python tools/bench_loss.py --floor              # the loss as a multiple of its matmul floor

`--floor` times, in one process per size, the loss against what the machine can do for it.
The unit is one compiled pass of the logits' size, sum(exp(C C^T / t)) over the n views
(XLA: `jax.jit`, or `tf.function(jit_compile=True)`), taken over row chunks of at most
2**26 logits so that its memory stays bounded; the floor of the blocked loss is four such
passes (the logits forward, their recomputation backward, the two products of the
backward). The pass and the losses are alternated, medians of `--repeats`; the row also
gives the process's peak memory, the share of the loss's CPU time spent in the kernel
(system time: page faults of fresh large buffers) and the load average around the run.
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
FLOOR_PASSES = 4  # Logits forward, logits again backward, the backward's two products.
FLOOR_CHUNK_LOGITS = 2**26  # Rows per chunk of the floor pass: at most this many logits.
TEMPERATURE = 0.07


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

    @tf.function(autograph=False)  # The loss's Python branches are on static values.
    def value_and_grad(features, labels):
        with tf.GradientTape() as tape:
            tape.watch(features)
            value = loss(features, labels)
        return value, tape.gradient(value, features)

    return value_and_grad


def floor_pass_fn(num_views):
    """A compiled function contrast [n, dim] -> sum(exp(contrast @ contrast^T / t)).

    Over row chunks of at most FLOOR_CHUNK_LOGITS logits, in one XLA program.
    """
    import keras
    from keras import ops

    chunk = max(1, min(num_views, FLOOR_CHUNK_LOGITS // num_views))
    while num_views % chunk:
        chunk -= 1

    def floor_pass(contrast):
        def body(i, total):
            rows = ops.slice(contrast, (i * chunk, 0), (chunk, contrast.shape[1]))
            logits = ops.matmul(rows, ops.transpose(contrast)) / TEMPERATURE
            return total + ops.sum(ops.exp(logits))

        if chunk == num_views:
            return body(0, 0.0)
        return ops.fori_loop(0, num_views // chunk, body, ops.zeros((), contrast.dtype))

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(floor_pass), chunk
    import tensorflow as tf

    return tf.function(floor_pass, jit_compile=True, autograph=False), chunk


def cpu_times():
    """(user, system) CPU seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def floor_worker(config):
    """One size: the floor pass and the losses alternated; medians, CPU shares, peak memory."""
    import statistics

    import keras
    import numpy as np

    views, dim = config["views"], config["dim"]
    if config.get("graph_loops"):  # The TensorFlow loops as graph ops (before XLA).
        from supcon_tf.losses import blocked

        blocked.XLA_LOOPS = False
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    features = rng.standard_normal((views // 2, 2, dim)).astype("float32")
    features /= np.linalg.norm(features, axis=-1, keepdims=True)
    labels = rng.integers(0, 100, views // 2).astype("int32")
    contrast = features.transpose(1, 0, 2).reshape(views, dim)
    contrast, features, labels = (keras.ops.convert_to_tensor(v)
                                  for v in (contrast, features, labels))
    floor_fn, chunk = floor_pass_fn(views)
    fns = {"floor": lambda: floor_fn(contrast)}
    for impl in config["impls"]:
        fn = loss_and_grad_fn(impl, config["block_size"])
        fns[impl] = lambda fn=fn: fn(features, labels)
    values = {}
    for name, fn in fns.items():  # Compiles.
        values[name] = fn()
        keras.ops.convert_to_numpy(values[name][-1] if name != "floor" else values[name])
    seconds = {name: [] for name in fns}
    cpu = {name: [0.0, 0.0] for name in fns}
    for _ in range(config["repeats"]):
        for name, fn in fns.items():
            before = cpu_times()
            start = time.perf_counter()
            keras.ops.convert_to_numpy(fn()[-1] if name != "floor" else fn())
            seconds[name].append(time.perf_counter() - start)
            after = cpu_times()
            cpu[name] = [c + a - b for c, a, b in zip(cpu[name], after, before)]
    result = {"views": views, "floor_chunk": chunk, "peak_bytes": peak_bytes(),
              "load": [load_before, os.getloadavg()[0]]}
    for name in fns:
        result[name] = {"seconds": statistics.median(seconds[name]),
                        "system_share": cpu[name][1] / max(sum(cpu[name]), 1e-9)}
        if name != "floor":
            result[name]["loss"] = float(values[name][0])
    print(f"{views}: {result}", file=sys.stderr, flush=True)
    return result


def floor_rows(args, backend, sizes, max_plain):
    """Runs `floor_worker` once per size (its own process: its own peak memory); the table."""
    header = ["views", "floor pass (s)", f"floor = {FLOOR_PASSES} passes (s)", "blocked (s)",
              "blocked / floor", "plain (s)", "plain / floor", "peak RSS MB",
              "system time (blocked)", "load avg", "same loss"]
    rows = []
    for views in sizes:
        impls = ["blocked"] + (["plain"] if views <= max_plain else [])
        config = dict(mode="floor", views=views, impls=impls, dim=args.dim,
                      block_size=args.block_size, repeats=args.repeats_floor, backend=backend,
                      graph_loops=args.graph_loops)
        print(f"measuring the floor and {impls} at {views} views ...", file=sys.stderr,
              flush=True)
        r = run_worker(os.path.abspath(__file__), config, args.timeout)
        if "error" in r:
            rows.append([views, r["error"]] + ["-"] * (len(header) - 2))
            continue
        floor = FLOOR_PASSES * r["floor"]["seconds"]
        cells = [views, f"{r['floor']['seconds']:.4f}", f"{floor:.4f}"]
        for impl in IMPLS[::-1]:
            if impl in r:
                cells += [f"{r[impl]['seconds']:.4f}", f"{r[impl]['seconds'] / floor:.2f}"]
            else:
                cells += ["not run", "-"]
        cells += [f"{r['peak_bytes'] / 2**20:.0f}", f"{100 * r['blocked']['system_share']:.1f}%",
                  "{:.1f} -> {:.1f}".format(*r["load"])]
        cells.append("-" if "plain" not in r else "yes" if math.isclose(
            r["plain"]["loss"], r["blocked"]["loss"], rel_tol=1e-4) else "NO")
        rows.append(cells)
    return header, rows


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
    parser.add_argument("--floor", action="store_true",
                        help="the loss against its matmul floor, one process per size")
    parser.add_argument("--graph-loops", action="store_true",
                        help="with --floor on TensorFlow: the blocked loops as graph ops, "
                             "not XLA (blocked.XLA_LOOPS=False), for comparison")
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--append", default=None,
                        help="markdown file to append to (default BENCHMARKS.md; none with --quick)")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        config = json.loads(args.worker)
        print(json.dumps((floor_worker if config.get("mode") == "floor" else worker)(config)))
        return 0

    gpu = has_gpu()
    backend = {"auto": "jax" if gpu else "tensorflow"}.get(args.backend, args.backend)
    if args.quick:
        sizes, args.dim, args.block_size = args.sizes or [64, 128], 16, 32
    else:
        sizes = args.sizes or [2**k for k in range(10, 17 if gpu else 15)]
    max_plain = args.max_plain_views or (max(sizes) if gpu or args.quick else 8192)
    repeats = args.repeats or (1 if args.quick else 3)
    append = args.append or (None if args.quick else os.path.join(ROOT, "BENCHMARKS.md"))
    if args.floor:
        args.repeats_floor = args.repeats or (1 if args.quick else 5)
        if not args.sizes and not args.quick:
            sizes = [4096, 8192, 16384] + ([65536] if gpu else [])
        header, rows = floor_rows(args, backend, sizes, max_plain)
        text = markdown_table(header, rows)
        print(text)
        if append:
            notes = [f"SupCon loss value and gradient, {args.dim}-D unit embeddings, 2 views, "
                     f"100 classes, block size {args.block_size}, Keras backend {backend}"
                     + (", blocked loops as TensorFlow graph ops (no XLA). " if args.graph_loops
                        else ". ")
                     + f"Floor: {FLOOR_PASSES} compiled passes of sum(exp(C C^T / t)) (chunks "
                     f"of at most {FLOOR_CHUNK_LOGITS} logits); the pass and the losses "
                     f"alternated in one process per size, medians of {args.repeats_floor} "
                     "after a compiling run. System time: share of the blocked loss's CPU "
                     "time. Peak RSS: the process's high-water mark."]
            append_section(append, f"Contrastive loss vs its matmul floor ({backend})",
                           command_line("bench_loss.py", argv), notes + args.note, text)
        return 0
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
