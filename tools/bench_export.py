"""Latency of one batch of digits through the export in each runtime, side by side, on CPU.

The same model is exported once (`export.export_saved_model`, and `export.write_formats`
for ONNX and LiteRT) and one batch of 32 test digits runs through the SavedModel in
TensorFlow (`serving_default`), the LiteRT interpreter (`model.tflite`) and ONNX
Runtime (`model.onnx`), one after another in this process. Each runtime is warmed up,
then timed over `--repeats` calls; the table gives the median and the 90th percentile
and how far each runtime's logits are from the SavedModel's.

  python tools/bench_export.py                 # the digits config's model, 200 calls
  python tools/bench_export.py --export DIR    # an existing export with all three formats
  python tools/bench_export.py --quick         # a tiny model, a few calls (seconds)
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import ROOT, append_section, command_line, markdown_table  # noqa: E402

sys.path.insert(0, ROOT)

IMAGE_SHAPE = (8, 8, 1)


def digits_batch(batch_size):
    """The first `batch_size` test digits, float32 in [0, 1]."""
    from supcon_tf import data

    dataset = data.load("digits", split="test")[0]
    images = [image for image, _ in dataset.take(batch_size).as_numpy_iterator()]
    return np.stack(images).astype("float32") / 255.0


def write_export(path, quick):
    """Exports a digits-sized model (SupCon head, 10-class classifier) in all three formats."""
    import keras

    from supcon_tf import encoders, export
    from supcon_tf.heads import ProjectionHead

    keras.utils.set_random_seed(0)
    kwargs = dict(widths=(8, 16), dim=16) if quick else {}
    encoder = encoders.get("small_cnn", input_shape=IMAGE_SHAPE, **kwargs)
    head = ProjectionHead(output_dim=8 if quick else 128)
    classifier = keras.layers.Dense(10)
    rep = encoder(np.zeros((1, *IMAGE_SHAPE), "float32"))
    head(rep)
    classifier(rep)
    # Latency does not depend on the weights: an untrained model is exported as is.
    export.export_saved_model(path, encoder=encoder, head=head, classifier_head=classifier,
                              image_shape=IMAGE_SHAPE, allow_untrained=True)
    export.write_formats(path, ("saved_model", "onnx", "litert"), export.serving_model(
        encoder, head, classifier, image_shape=IMAGE_SHAPE), IMAGE_SHAPE)
    return path


def runners(path):
    """{runtime: (file, function images -> logits)} for the three runtimes."""
    import onnxruntime
    import tensorflow as tf

    serving = tf.saved_model.load(path).signatures["serving_default"]
    interpreter = tf.lite.Interpreter(model_path=os.path.join(path, "model.tflite"))
    litert = interpreter.get_signature_runner("serving_default")
    session = onnxruntime.InferenceSession(os.path.join(path, "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    logits_at = [o.name for o in session.get_outputs()].index("logits")
    return {
        "SavedModel in TensorFlow": ("saved_model.pb", lambda x: serving(
            images=tf.constant(x))["logits"].numpy()),
        "LiteRT interpreter": ("model.tflite", lambda x: litert(images=x)["logits"]),
        "ONNX Runtime": ("model.onnx", lambda x: session.run(None, {"images": x})[logits_at]),
    }


def measure(fn, images, repeats, warmup):
    for _ in range(warmup):
        fn(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(images)
        times.append(time.perf_counter() - start)
    return np.median(times), np.percentile(times, 90)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model, a few calls")
    parser.add_argument("--export", default=None,
                        help="an export holding saved_model.pb, model.onnx and model.tflite")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--append", default=None,
                        help="markdown file to append to (default BENCHMARKS.md; none with --quick)")
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args(argv)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the CPU, for every runtime
    repeats = args.repeats or (5 if args.quick else 200)
    images = digits_batch(args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.export or write_export(os.path.join(tmp, "export"), args.quick)
        results = {name: (file, fn(images), measure(fn, images, repeats, 2 if args.quick else 20))
                   for name, (file, fn) in runners(path).items()}
    reference = results["SavedModel in TensorFlow"][1]
    header = ["runtime", "file", "batch", "median (ms)", "p90 (ms)", "images/s",
              "max abs logit diff vs SavedModel"]
    rows = [[name, file, args.batch_size, f"{median * 1e3:.3f}", f"{p90 * 1e3:.3f}",
             f"{args.batch_size / median:,.0f}",
             f"{float(np.max(np.abs(logits - reference))):.1e}"]
            for name, (file, logits, (median, p90)) in results.items()]
    text = markdown_table(header, rows)
    print(text)
    append = args.append or (None if args.quick else os.path.join(ROOT, "BENCHMARKS.md"))
    if append:
        model = ("the given export" if args.export else
                 "the digits config's model (small_cnn, 128-D projection, 10 classes)")
        notes = [f"One batch of {args.batch_size} test digits (8x8x1 float32) through "
                 f"{model}, {repeats} calls after warm-up, one process, CPU only."]
        append_section(append, "Export latency: SavedModel vs LiteRT vs ONNX Runtime (CPU)",
                       command_line("bench_export.py", argv), notes + args.note, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
