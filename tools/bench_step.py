"""Train-step throughput of SupCon: the package vs a bare Keras model vs PyTorch, in one run.

A step is a full SupCon update on 2 views: forward, loss, backward, SGD-momentum update.
Rows (measured one after the other, so that no two compete for the cores, in one fresh
subprocess per framework):
  package   supcon_tf.methods.SupCon(resnet, ProjectionHead) with SupConLoss
  keras     a bare Keras model with the same layers and a plain SupCon loss, Keras' own fit step
  torch     the same ResNet (written here layer for layer), head, loss and optimizer in PyTorch,
            eager; `torch.compile` too on a GPU
for ResNet-18 / CIFAR stem / 32x32 / batch 512 and (accelerators only) ResNet-50 / 224x224 /
batch 256, in float32 and bfloat16, with XLA (`jit_compile`) on and off for Keras. The Keras
backend is TensorFlow on CPU and JAX on a GPU (`--backend`). images/s counts encoder images
(batch x 2 views). `--rounds N` measures the whole sequence N times and reports each row's
median and spread: on a shared machine one round's ratios can be off by 10%. The table goes
to stdout and, with `--append`, to BENCHMARKS.md.

  python tools/bench_step.py                 # the full run for this machine, appended
  python tools/bench_step.py --quick         # tiny models, seconds: checks the tool runs
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPERATURE = 0.1
PROJECTION_DIM = 128
LEARNING_RATE = 0.05
# name -> (depth, stem, image size, batch, accelerator only)
MODELS = {
    "resnet18_cifar": (18, "cifar", 32, 512, False),
    "resnet50_imagenet": (50, "imagenet", 224, 256, True),
}
TORCH_MISSING = "PyTorch not installed (pip install torch==2.13.0): not measured"
BF16_EMULATED = ("not run: this CPU has no native bfloat16 (avx512_bf16 / AMX), PyTorch "
                 "emulates it at minutes per step")


# --- shared by the bench tools -------------------------------------------------------------

def has_gpu():
    """Whether an NVIDIA GPU is visible (without importing a framework)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "" or not shutil.which("nvidia-smi"):
        return False
    result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return result.returncode == 0 and "GPU" in result.stdout


def cpu_has_bfloat16():
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def machine_description():
    """CPU model and core count, and the GPU's name when there is one."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores visible"
    if has_gpu():
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                               "--format=csv,noheader"], capture_output=True, text=True)
        text += f"; GPU: {gpus.stdout.strip()}"
    return text


def library_versions():
    """Versions of the frameworks involved, read without importing them."""
    from importlib import metadata

    found = []
    for name in ("tensorflow", "keras", "jax", "jaxlib", "torch", "numpy"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found) + f", Python {platform.python_version()}"


def markdown_table(header, rows):
    """A GitHub-markdown table; every cell is str()-ed."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line(script, argv):
    """The command that reproduces a run, shell-quoted, without `--append FILE`."""
    import shlex

    args = list(sys.argv[1:] if argv is None else argv)
    if "--append" in args:
        i = args.index("--append")
        del args[i:i + 2]
    return shlex.join(["python", f"tools/{script}"] + args)


def append_section(path, title, command, notes, table):
    """Appends one BENCHMARKS.md section: title, machine, versions, command, notes, table."""
    text = (f"\n## {title}\n\n"
            f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
            f"- Machine: {machine_description()}\n"
            f"- Libraries: {library_versions()}\n"
            f"- Command: `{command}`\n")
    text += "".join(f"- {note}\n" for note in notes)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text + "\n" + table + "\n")


def cifar_encoder(width, size, quick=False):
    """The ResNet-18 (CIFAR stem) the step-cost tools time, at `width` on `size` x `size`
    RGB images; with `quick`, a two-block small CNN: a quick run checks the tool's plumbing
    and table, which do not depend on the encoder, without tracing 18 layers per model."""
    from supcon_tf import encoders

    if quick:
        return encoders.small_cnn(input_shape=(size, size, 3), widths=(8, 16), dim=32)
    return encoders.resnet(18, stem="cifar", width_multiplier=width,
                           input_shape=(size, size, 3))


def cifar_encoder_name(width, quick=False):
    """`cifar_encoder`'s network, for a table's notes."""
    return "a two-block small CNN (--quick)" if quick else f"ResNet-18 (CIFAR stem, width x{width})"


def run_worker(script, config, timeout):
    """Runs `script --worker JSON` in a subprocess and reads its JSON result lines.

    `config` is a dict (the worker prints one JSON result) or a list of dicts (the
    worker prints one `ROW i JSON` line per config as it finishes, so rows done before
    a timeout are kept). A failure gives {"error": ...} cells, not a crash.
    """
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3")
    backend = (config[0] if isinstance(config, list) else config).get("backend")
    if backend:
        env["KERAS_BACKEND"] = backend
    try:
        result = subprocess.run([sys.executable, script, "--worker", json.dumps(config)],
                                capture_output=True, text=True, timeout=timeout, env=env)
        stdout, stderr, failed = result.stdout, result.stderr, result.returncode != 0
        error = None
    except subprocess.TimeoutExpired as expired:
        stdout, stderr, failed = expired.stdout or "", expired.stderr or "", True
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
        stderr = stderr.decode() if isinstance(stderr, bytes) else stderr
        error = {"error": f"timed out after {timeout} s"}
    if error is None and failed:
        tail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        error = {"error": f"failed: {tail[0][:200]}"}
    if isinstance(config, list):
        rows = [dict(error or {"error": "no result"}) for _ in config]
        for line in stdout.splitlines():
            if line.startswith("ROW "):
                _, index, payload = line.split(" ", 2)
                rows[int(index)] = json.loads(payload)
        return rows
    lines = [l for l in stdout.splitlines() if l.startswith(("{", "["))]
    if lines and error is None:
        return json.loads(lines[-1])
    return error or {"error": "no result"}


# --- the PyTorch reference -------------------------------------------------------------------

def torch_supcon(features, labels, temperature=TEMPERATURE):
    """SupCon (L_out, all views as anchors, scaled by t) on features [batch, views, dim]."""
    import torch

    batch, views, _ = features.shape
    flat = features.transpose(0, 1).reshape(batch * views, -1).float()
    logits = flat @ flat.T / temperature
    eye = torch.eye(batch * views, device=flat.device, dtype=torch.bool)
    all_labels = labels.repeat(views)
    positives = (all_labels[:, None] == all_labels[None, :]) & ~eye
    log_prob = logits - torch.logsumexp(logits.masked_fill(eye, float("-inf")), 1, keepdim=True)
    mean_positive = (log_prob * positives).sum(1) / positives.sum(1).clamp(min=1)
    return (-mean_positive * temperature).view(views, batch).mean(0).mean()


def torch_model(depth, stem, width_multiplier, projection_dim=PROJECTION_DIM):
    """ResNet v1 + projection head matching supcon_tf.encoders.resnet layer for layer."""
    from torch import nn

    blocks = {18: ("basic", (2, 2, 2, 2)), 50: ("bottleneck", (3, 4, 6, 3))}
    kind, stages = blocks[depth]
    expansion = 4 if kind == "bottleneck" else 1

    def width(c):
        return max(1, int(round(c * width_multiplier)))

    def bn(c):  # Keras momentum 0.9 is PyTorch momentum 0.1.
        return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)

    def conv(cin, cout, k, s):
        return nn.Conv2d(cin, cout, k, s, padding=k // 2, bias=False)

    class Block(nn.Module):
        def __init__(self, cin, filters, stride):
            super().__init__()
            cout = filters * expansion
            self.shortcut = nn.Identity()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(conv(cin, cout, 1, stride), bn(cout))
            if kind == "basic":
                self.body = nn.Sequential(conv(cin, filters, 3, stride), bn(filters),
                                          nn.ReLU(inplace=True), conv(filters, filters, 3, 1),
                                          bn(filters))
            else:
                self.body = nn.Sequential(
                    conv(cin, filters, 1, 1), bn(filters), nn.ReLU(inplace=True),
                    conv(filters, filters, 3, stride), bn(filters), nn.ReLU(inplace=True),
                    conv(filters, cout, 1, 1), bn(cout))

        def forward(self, x):
            return nn.functional.relu(self.shortcut(x) + self.body(x))

    if stem == "imagenet":
        layers = [conv(3, width(64), 7, 2), bn(width(64)), nn.ReLU(inplace=True),
                  nn.MaxPool2d(3, 2, padding=1)]
    else:
        layers = [conv(3, width(64), 3, 1), bn(width(64)), nn.ReLU(inplace=True)]
    cin = width(64)
    for stage, num_blocks in enumerate(stages):
        for block in range(num_blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(Block(cin, width(64 * 2**stage), stride))
            cin = width(64 * 2**stage) * expansion
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    head = [nn.Linear(cin, cin, bias=False), nn.BatchNorm1d(cin, eps=1e-5, momentum=0.1),
            nn.ReLU(inplace=True), nn.Linear(cin, projection_dim)]
    return nn.Sequential(nn.Sequential(*layers), nn.Sequential(*head))


def torch_step_rate(config):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = torch_model(config["depth"], config["stem"], config["width"]).to(device)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    batch, size = config["batch"], config["image"]
    views = torch.rand(batch * 2, 3, size, size, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)
    bf16 = config["precision"] == "bfloat16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            z = model(views)
        z = torch.nn.functional.normalize(z.float(), dim=1).view(2, batch, -1).transpose(0, 1)
        loss = torch_supcon(z, labels)
        loss.backward()
        optimizer.step()
        return loss.detach()

    if config["impl"] == "torch_compile":
        step = torch.compile(step)
    return timed(step, config, lambda: params, sync=lambda loss: float(loss))


# --- the Keras rows ----------------------------------------------------------------------------

def keras_supcon(labels, features):
    """The same SupCon as `torch_supcon`, in keras.ops: what a user would write by hand."""
    from keras import ops

    batch, views = ops.shape(features)[0], features.shape[1]
    flat = ops.reshape(ops.transpose(ops.cast(features, "float32"), (1, 0, 2)), (-1, features.shape[2]))
    logits = ops.matmul(flat, ops.transpose(flat)) / TEMPERATURE
    eye = ops.cast(ops.eye(ops.shape(flat)[0]), "bool")
    all_labels = ops.tile(ops.reshape(labels, (-1,)), (views,))
    positives = ops.logical_and(ops.equal(all_labels[:, None], all_labels[None, :]),
                                ops.logical_not(eye))
    positives = ops.cast(positives, "float32")
    log_prob = logits - ops.logsumexp(ops.where(eye, float("-inf"), logits), axis=1,
                                      keepdims=True)
    mean_positive = ops.sum(log_prob * positives, 1) / ops.maximum(ops.sum(positives, 1), 1.0)
    return ops.mean(ops.reshape(-mean_positive * TEMPERATURE, (views, batch)), axis=0)


def keras_models(config):
    """(model, params) for the package or the bare Keras row."""
    import keras

    from supcon_tf import encoders

    if config["precision"] == "bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    size = config["image"]
    encoder = encoders.resnet(config["depth"], stem=config["stem"],
                              width_multiplier=config["width"], input_shape=(size, size, 3))
    if config["impl"] == "package":
        from supcon_tf import methods
        from supcon_tf.heads import ProjectionHead
        from supcon_tf.losses import SupConLoss

        model = methods.SupCon(encoder, ProjectionHead(output_dim=PROJECTION_DIM),
                               loss=SupConLoss(temperature=TEMPERATURE))
        loss = "auto"
    else:
        from keras import layers, ops

        from supcon_tf.encoders import batch_norm

        inputs = keras.Input((2, size, size, 3))
        # Output shapes given: JAX cannot infer a Lambda's from a symbolic call.
        x = layers.Lambda(lambda v: ops.reshape(v, (-1, size, size, 3)),
                          output_shape=(size, size, 3))(inputs)
        x = encoder(x)
        width = x.shape[-1]
        x = layers.Dense(width, use_bias=False)(x)
        x = layers.ReLU()(batch_norm()(x))
        x = layers.Dense(PROJECTION_DIM)(x)
        x = layers.Lambda(lambda z: ops.reshape(ops.normalize(ops.cast(z, "float32"), -1),
                                                (-1, 2, PROJECTION_DIM)),
                          output_shape=(2, PROJECTION_DIM))(x)
        model = keras.Model(inputs, x)
        loss = keras_supcon
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=0.9), loss=loss,
                  jit_compile=config["xla"])
    return model


def keras_step(config):
    """(step, parameter count function) of the package or bare Keras model on one held batch.

    The count is a function: a subclassed model builds its head on the first step.
    """
    import keras
    import numpy as np

    model = keras_models(config)
    rng = np.random.default_rng(0)
    batch, size = config["batch"], config["image"]
    views = rng.random((batch, 2, size, size, 3), dtype=np.float32)
    labels = rng.integers(0, 10, batch).astype("int32")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        views, labels = tf.constant(views), tf.constant(labels)
    elif keras.backend.backend() == "jax":
        import jax

        views, labels = jax.device_put(views), jax.device_put(labels)
    params = lambda: int(sum(np.prod(w.shape) for w in model.trainable_weights))  # noqa: E731
    return (lambda: model.train_on_batch(views, labels)), params


def keras_step_rate(config):
    step, params = keras_step(config)
    return timed(step, config, params, sync=float)


def alternating_rates(config):
    """The package and bare Keras in one process, steps alternated (A B B A ...).

    Both see the same machine state at nearly the same moments, so their ratio is far
    steadier than that of rows measured minutes apart. Returns {impl: row result}.
    """
    import statistics

    steps = {impl: keras_step(dict(config, impl=impl)) for impl in ("package", "keras")}
    for step, _ in steps.values():
        for _ in range(config["warmup"]):
            float(step())
    times = {impl: [] for impl in steps}
    order = list(steps)
    for i in range(config["steps"]):
        for impl in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            float(steps[impl][0]())
            times[impl].append(time.perf_counter() - start)
    results = {}
    for impl, values in times.items():
        median = statistics.median(values)
        results[impl] = {"step_s": median, "images_per_s": 2 * config["batch"] / median,
                         "params": steps[impl][1](), "rounds": 1,
                         "spread": (max(values) - min(values)) / median}
    return results


def timed(step, config, params, sync):
    """Runs warm-up steps, then times `config['steps']` steps; one host sync at the end.

    Keras' `train_on_batch` returns the loss as a Python float, so each Keras step ends
    with a host sync; on a CPU this costs nothing next to the step itself.
    """
    for _ in range(config["warmup"]):
        sync(step())
    start = time.perf_counter()
    for _ in range(config["steps"]):
        result = step()
    sync(result)
    seconds = (time.perf_counter() - start) / config["steps"]
    return {"step_s": seconds, "images_per_s": 2 * config["batch"] / seconds,
            "params": params()}


def measure_one(config):
    """One row's measurement, or {"error": ...} (torch missing, out of memory, ...)."""
    if config["impl"].startswith("torch"):
        try:
            import torch  # noqa: F401
        except ImportError:
            return {"error": TORCH_MISSING}
        measure = torch_step_rate
    else:
        import keras

        keras.backend.clear_session()
        keras.mixed_precision.set_global_policy("float32")
        measure = alternating_rates if config["impl"] == "alternate" else keras_step_rate
    try:
        return measure(config)
    except Exception as error:  # Out of memory, say: a table cell, the next row runs.
        return {"error": f"{type(error).__name__}: {str(error)[:120]}"}


def worker(configs):
    """Measures each config in this process (one framework per process)."""
    results = []
    for config in configs:
        results.append(measure_one(config))
        print(f"ROW {len(results) - 1} {json.dumps(results[-1])}", flush=True)
    return results


# --- the driver --------------------------------------------------------------------------------

def plan(args, gpu):
    """The rows to measure, as worker configs."""
    rows = []
    for name in args.models:
        depth, stem, image, batch, accelerator_only = MODELS[name]
        if args.quick:
            image, batch = 16, 8
        base = dict(model=name, depth=depth, stem=stem, image=image,
                    batch=args.batch or batch, width=0.125 if args.quick else 1.0,
                    steps=args.steps, warmup=args.warmup)
        for precision in args.precisions:
            if accelerator_only and not gpu:
                rows.append(dict(base, impl="package", precision=precision, xla=None,
                                 skip="accelerator only: not run on CPU"))
                continue
            if not args.alternate:  # --alternate: only the package / bare Keras pairs.
                torch_row = dict(base, impl="torch", precision=precision, xla=None)
                if precision == "bfloat16" and not gpu and not cpu_has_bfloat16():
                    torch_row["skip"] = BF16_EMULATED
                rows.append(torch_row)
                if gpu:
                    rows.append(dict(base, impl="torch_compile", precision=precision,
                                     xla=None))
            for xla in args.xla:
                for impl in ("package", "keras"):
                    rows.append(dict(base, impl=impl, precision=precision, xla=xla,
                                     backend=args.backend))
    return rows


def measure_alternating(results, args):
    """--alternate: each (model, precision, XLA) pair of Keras rows in one process."""
    for config in results:
        if config["impl"] != "package" or "skip" in config:
            continue
        bare = next(c for c in results if c["impl"] == "keras" and all(
            c[k] == config[k] for k in ("model", "precision", "xla")))
        print(f"alternating package / bare Keras steps: {config['precision']}, XLA "
              f"{config['xla']} ...", file=sys.stderr, flush=True)
        pair = run_worker(os.path.abspath(__file__), [dict(config, impl="alternate")],
                          args.timeout * 2)[0]
        for row, impl in ((config, "package"), (bare, "keras")):
            row["runs"] = [pair.get(impl, pair)]


def combine_runs(runs):
    """One row from its rounds: the median step time and the spread (max - min) / median."""
    import statistics

    done = [r for r in runs if "step_s" in r]
    if not done:
        return runs[0] if runs else {}
    if len(done) == 1:  # Keeps a step-to-step spread that --alternate measured.
        return dict({"rounds": 1}, **done[0])
    times = [r["step_s"] for r in done]
    step_s = statistics.median(times)
    images = done[0]["images_per_s"] * done[0]["step_s"]  # Images per step: batch x 2 views.
    return {"step_s": step_s, "images_per_s": images / step_s, "params": done[0]["params"],
            "rounds": len(done), "spread": (max(times) - min(times)) / step_s}


def table(results):
    """Rows with throughput, ratio to PyTorch eager and package/bare-Keras ratio."""
    def key(r, impl, xla=None):
        return (r["model"], r["precision"], impl, xla)

    by_key = {key(r, r["impl"], r["xla"]): r for r in results}
    header = ["model", "batch", "precision", "implementation", "backend", "XLA", "step (s)",
              "images/s", "rounds", "spread", "vs PyTorch eager", "vs bare Keras", "params"]
    rows = []
    for r in results:
        label = {"package": "supcon_tf", "keras": "bare Keras", "torch": "PyTorch eager",
                 "torch_compile": "PyTorch torch.compile"}[r["impl"]]
        backend = r.get("backend") or ("torch" if r["impl"].startswith("torch") else "-")
        xla = "-" if r["xla"] is None else ("on" if r["xla"] else "off")
        if "images_per_s" not in r:
            rows.append([r["model"], r["batch"], r["precision"], label, backend, xla,
                         "-", r.get("skip") or r.get("error", "failed"), "-", "-", "-", "-",
                         "-"])
            continue
        torch_rate = by_key.get(key(r, "torch"), {}).get("images_per_s")
        vs_torch = f"{r['images_per_s'] / torch_rate:.2f}x" if torch_rate else "n/a"
        vs_bare = "-"
        if r["impl"] == "package":
            bare = by_key.get(key(r, "keras", r["xla"]), {}).get("images_per_s")
            vs_bare = f"{r['images_per_s'] / bare:.2f}x" if bare else "n/a"
        rows.append([r["model"], r["batch"], r["precision"], label, backend, xla,
                     f"{r['step_s']:.3f}", f"{r['images_per_s']:.1f}", r.get("rounds", 1),
                     f"{100 * r['spread']:.0f}%" if "spread" in r else "-", vs_torch, vs_bare,
                     f"{r['params']:,}"])
    return markdown_table(header, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models and steps (seconds)")
    parser.add_argument("--backend", choices=("auto", "tensorflow", "jax"), default="auto",
                        help="Keras backend (auto: jax with a GPU, else tensorflow)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=None)
    parser.add_argument("--precisions", nargs="+", choices=("float32", "bfloat16"),
                        default=None, help="default: both (float32 only with --quick)")
    parser.add_argument("--xla", nargs="+", choices=("on", "off"), default=None,
                        help="jit_compile settings (default: off on for TF, on for JAX)")
    parser.add_argument("--batch", type=int, default=None, help="override the batch size")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per row")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every row this many times, interleaved; report the "
                             "median step and the spread (max - min) / median")
    parser.add_argument("--alternate", action="store_true",
                        help="only the package and bare Keras rows, each pair in one process "
                             "with their steps alternated: the steadiest package / bare ratio")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per row")
    parser.add_argument("--append", default=None,
                        help="markdown file to append the section to (default: BENCHMARKS.md, "
                             "none with --quick)")
    parser.add_argument("--note", action="append", default=[], help="a line for the section")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1; received {args.rounds}")
    if args.worker:
        worker(json.loads(args.worker))  # Prints one ROW line per config.
        return 0

    gpu = has_gpu()
    if args.backend == "auto":
        args.backend = "jax" if gpu else "tensorflow"
    args.models = args.models or (["resnet18_cifar"] if args.quick else sorted(MODELS, reverse=True))
    args.xla = [x == "on" for x in (args.xla or (["on"] if args.backend == "jax" else ["off", "on"]))]
    args.precisions = args.precisions or (["float32"] if args.quick else ["float32", "bfloat16"])
    args.steps = args.steps or (1 if args.quick else 5)
    args.warmup = args.warmup if args.warmup is not None else 1
    results = plan(args, gpu)
    # One process per framework (PyTorch; Keras on its backend), rows one after another;
    # with --rounds, the whole sequence again, so that slow drifts of a shared machine
    # fall on every row alike.
    if args.alternate:
        measure_alternating(results, args)
    for round_index in range(0 if args.alternate else args.rounds):
        for group in ("torch", "keras"):
            todo = [c for c in results if "skip" not in c
                    and c["impl"].startswith("torch") == (group == "torch")]
            if todo:
                print(f"round {round_index + 1}/{args.rounds}: measuring {len(todo)} {group} "
                      "rows ...", file=sys.stderr, flush=True)
                for config, result in zip(todo, run_worker(os.path.abspath(__file__), todo,
                                                           args.timeout * len(todo))):
                    config.setdefault("runs", []).append(result)
    for config in results:
        config.update(combine_runs(config.pop("runs", [])))
    text = table(results)
    print(text)
    append = args.append or (None if args.quick else os.path.join(ROOT, "BENCHMARKS.md"))
    if append:
        command = command_line("bench_step.py", argv)
        if args.alternate:
            title = "Train step: supcon_tf vs bare Keras, steps alternated"
            notes = [f"Per pair: {args.warmup} warm-up step(s) each, then {args.steps} timed "
                     "steps each, alternated (A B B A ...) in one process; the median step is "
                     "shown; images/s counts encoder images (batch x 2 views)."]
        else:
            title = "Train step: supcon_tf vs bare Keras vs PyTorch"
            notes = [f"Steps timed per row: {args.steps} after {args.warmup} warm-up, in each "
                     f"of {args.rounds} round(s) (rows interleaved; the median is shown); "
                     "images/s counts encoder images (batch x 2 views); one process per "
                     "framework and round."]
        append_section(append, title + (" (GPU)" if gpu else " (CPU)"), command,
                       notes + args.note, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
