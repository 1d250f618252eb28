"""The export in the runtimes that serve it (TF Serving's TF1 loader, LiteRT, ONNX Runtime),
written from either backend."""

import pathlib

import keras
import numpy as np
import pytest

pytest.importorskip("tensorflow")
if keras.backend.backend() != "tensorflow":
    pytest.skip("SavedModel export needs the TensorFlow backend", allow_module_level=True)

import tensorflow as tf  # noqa: E402
import tensorflow_hub as hub  # noqa: E402

from supcon_tf import export  # noqa: E402

import _clip_export  # noqa: E402  (tests/ is on sys.path: conftest.py)
import _export_helpers as helpers  # noqa: E402
import _subprocess  # noqa: E402
from readme_blocks import readme_blocks  # noqa: E402
from tolerance import assert_close  # noqa: E402

FORWARD_TERMS = helpers.FORWARD_TERMS
HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def run():
    return helpers.trained_run()


@pytest.fixture(scope="module")
def batch():
    """float32 images, the same as uint8, and as PNG bytes."""
    images, _ = helpers.data(n=8, seed=11)
    uint8 = (images * 255).round().astype(np.uint8)
    pngs = np.array([tf.io.encode_png(image).numpy() for image in uint8], dtype=object)
    return images, uint8, pngs


def feed_for(spec_dtype, batch):
    images, uint8, pngs = batch
    return {tf.float32: images, tf.uint8: uint8, tf.string: pngs}[spec_dtype]


def test_tf1_session_loader_runs_every_signature_as_hub_load_does(run, batch):
    module = hub.load(run.export_dir)
    names = sorted(module.signatures)
    inputs = {name: feed_for(module.signatures[name].structured_input_signature[1]["images"]
                             .dtype, batch) for name in names}
    served = helpers.run_tf1(run.export_dir, inputs)
    assert sorted(served) == names and len(names) == 9
    for name in names:
        expected = module.signatures[name](images=tf.constant(inputs[name]))
        assert sorted(served[name]) == sorted(expected), name
        helpers.assert_informative(served[name])
        for key, value in expected.items():
            assert_close(served[name][key], value.numpy(), dtype="float32",
                         terms=FORWARD_TERMS, err_msg=f"{name}/{key}")
    # The uint8 and encoded forms give the float32 signature's outputs of the same pixels.
    reference = helpers.reference_outputs(run, batch[1])
    for name in ("serving_default_uint8", "encoded"):
        for key, value in served[name].items():
            assert_close(value, reference[key], dtype="float32", terms=FORWARD_TERMS,
                         err_msg=f"{name}/{key}")


def test_saved_model_cli_runs_classify(run, batch, tmp_path):
    np.save(tmp_path / "x.npy", batch[0])
    _subprocess.run_all([[
        "-m", "tensorflow.python.tools.saved_model_cli", "run", "--dir", run.export_dir,
        "--tag_set", "serve", "--signature_def", "classify",
        "--inputs", f"images={tmp_path / 'x.npy'}", "--outdir", str(tmp_path / "out")]],
        timeout=300)
    logits = np.load(tmp_path / "out" / "logits.npy")
    helpers.assert_informative({"logits": logits})
    assert_close(logits, helpers.reference_outputs(run, batch[0])["logits"], dtype="float32",
                 terms=FORWARD_TERMS)


def test_encoded_signature_equals_decode_image_then_float_signature(run, batch, tmp_path):
    images, uint8, pngs = batch
    encoded = export.load_saved_model(run.export_dir, "encoded")
    module = encoded.saved_model
    jpegs = [tf.io.encode_jpeg(image, quality=90).numpy() for image in uint8]
    for data in (list(pngs), jpegs):
        decoded = tf.stack([tf.io.decode_image(d, channels=1, dtype=tf.float32) for d in data])
        expected = module.signatures["serving_default"](images=decoded)
        out = encoded(data)
        for key, value in expected.items():
            assert_close(out[key].numpy(), value.numpy(), dtype="float32", terms=FORWARD_TERMS,
                         err_msg=key)
    # Another size is resized to the model's input (antialiased) in the graph.
    big = tf.image.resize(uint8, (16, 16), method="nearest")
    out = encoded([tf.io.encode_png(image).numpy() for image in big.numpy()])
    resized = tf.cast(tf.round(tf.image.resize(tf.cast(big, tf.float32), (8, 8),
                                               antialias=True)), tf.uint8)
    expected = module.signatures["serving_default_uint8"](images=resized)
    assert_close(out["logits"].numpy(), expected["logits"].numpy(), dtype="float32",
                 terms=FORWARD_TERMS)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input `images` of the encoded signature must hold JPEG or PNG "
                             r"bytes; element\] \[1\] \[is neither"):
        encoded([pngs[0], b"not an image at all"])
    with pytest.raises(ValueError, match=r"must be string \(JPEG or PNG bytes\); received "
                                         "dtype float32"):
        encoded(tf.constant(images))


def test_litert_conversion_from_the_saved_model_gives_the_keras_outputs(run, batch):
    converter = tf.lite.TFLiteConverter.from_saved_model(
        run.export_dir, signature_keys=["serving_default"])
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    outputs = interpreter.get_signature_runner("serving_default")(images=batch[0])
    assert sorted(outputs) == sorted(export.OUTPUTS)
    helpers.assert_informative(outputs)
    reference = helpers.reference_outputs(run, batch[0])
    for key, value in outputs.items():
        assert_close(value, reference[key], dtype="float32", terms=FORWARD_TERMS, err_msg=key)


def test_onnx_and_litert_files_through_keras_export_give_the_keras_outputs(run, batch, tmp_path):
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    model = export.serving_model(run.encoder, run.head, run.classifier.head,
                                 image_shape=helpers.IMAGE_SHAPE)
    written = export.write_formats(tmp_path, ("saved_model", "onnx", "litert"), model,
                                   helpers.IMAGE_SHAPE)
    assert sorted(written) == ["litert", "onnx"]  # the SavedModel is export_saved_model's
    session = ort.InferenceSession(written["onnx"], providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    names = [o.name for o in session.get_outputs()]
    onnx_outputs = dict(zip(names, session.run(None, {"images": batch[0]})))
    interpreter = tf.lite.Interpreter(model_path=written["litert"])
    litert_outputs = interpreter.get_signature_runner("serving_default")(images=batch[0])
    reference = helpers.reference_outputs(run, batch[0])
    for runtime, outputs in (("onnx", onnx_outputs), ("litert", litert_outputs)):
        assert sorted(outputs) == sorted(export.OUTPUTS), runtime
        helpers.assert_informative(outputs)
        for key, value in outputs.items():
            assert_close(value, reference[key], dtype="float32", terms=FORWARD_TERMS,
                         err_msg=f"{runtime}/{key}")


def test_formats_refuse_unknown_names_missing_extras_and_the_wrong_backend(monkeypatch):
    assert export.check_formats("saved_model, litert") == ("saved_model", "litert")
    with pytest.raises(ValueError, match="`export.formats` holds an unknown format 'tflite'; "
                                         "the formats are 'saved_model', 'onnx', 'litert'"):
        export.check_formats(("saved_model", "tflite"))
    with pytest.raises(ValueError, match="must be a non-empty list"):
        export.check_formats(())
    with pytest.raises(ValueError, match="names a format twice"):
        export.check_formats(("onnx", "onnx"))
    with pytest.raises(ValueError, match="format 'litert' cannot be written from Keras' 'jax' "
                                         "backend.*KERAS_BACKEND=tensorflow"):
        export.check_formats(("saved_model", "litert"), backend="jax")
    assert export.check_formats(("saved_model",), backend="jax") == ("saved_model",)
    monkeypatch.setitem(export.FORMATS, "onnx",
                        ("model.onnx", ("tf2onnx_not_here",), "onnx", ("tensorflow",)))
    with pytest.raises(ValueError, match=r"format 'onnx' needs tf2onnx_not_here, which is not "
                                         r"installed: pip install \"supcon-tf\[onnx\]\""):
        export.check_formats(("saved_model", "onnx"))


@pytest.fixture(scope="module")
def jax_exports(tmp_path_factory):
    """The folder where one JAX process wrote its exports (`_jax_export.py`)."""
    pytest.importorskip("jax")
    out = tmp_path_factory.mktemp("jax_exports")
    _subprocess.run_all([[str(HERE / "_jax_export.py"), str(out)]], timeout=600,
                        envs=[_subprocess.script_env(KERAS_BACKEND="jax")])
    return out


def test_a_run_trained_on_jax_exports_a_saved_model_that_serves_the_same(jax_exports):
    data = dict(np.load(jax_exports / "reference.npz"))
    images, uint8 = data["images"], data["uint8"]
    ref = {k[4:]: v for k, v in data.items() if k.startswith("ref_")}
    ref8 = {k[5:]: v for k, v in data.items() if k.startswith("ref8_")}
    export_dir = str(jax_exports / "export")
    module = hub.load(export_dir)
    pngs = np.array([tf.io.encode_png(image).numpy() for image in uint8], dtype=object)
    feeds = {name: feed_for(fn.structured_input_signature[1]["images"].dtype,
                            (images, uint8, pngs)) for name, fn in module.signatures.items()}
    assert len(feeds) == 9
    served = helpers.run_tf1(export_dir, feeds)
    for name, images_in in feeds.items():
        want = ref if images_in is images else ref8
        for runtime, outputs in (("hub.load", module.signatures[name](images=images_in)),
                                 ("tf1", served[name])):
            helpers.assert_informative(outputs)
            for key, value in outputs.items():
                assert_close(np.asarray(value), want[key], dtype="float32",
                             terms=FORWARD_TERMS, err_msg=f"{runtime}/{name}/{key}")
    assert_close(module(images).numpy(), ref["unnormalized_embeddings"], dtype="float32",
                 terms=FORWARD_TERMS)
    # TF Hub's training mode: a gradient for every trainable variable, BatchNorm moves.
    assert len(module.trainable_variables) == 8 and len(module.variables) == 12
    stats = [v for v in module.variables if not v.trainable]
    before = [v.numpy().copy() for v in stats]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(module(tf.constant(images), training=True))
    grads = tape.gradient(loss, module.trainable_variables)
    assert all(g is not None and np.any(g.numpy()) for g in grads)
    assert all(np.any(b != v.numpy()) for b, v in zip(before, stats))


def test_readme_serving_requests_are_answered_by_the_tf1_loader(run):
    """The README's TF Serving REST bodies, read as TF Serving reads them (row format,
    `{"b64": ...}` as bytes), run through TF Serving's loader: the TF1 session loader."""
    import base64
    import json

    code = readme_blocks()["serving_request"].replace('"workdir/export"', repr(run.export_dir))
    namespace = {}
    exec(compile(code, "README:serving_request", "exec"), namespace)
    inputs = {}
    for body in (json.loads(namespace["classify_body"]), json.loads(namespace["encoded_body"])):
        instances = body["instances"]
        if isinstance(instances[0], dict):
            instances = np.array([base64.b64decode(i["b64"]) for i in instances], dtype=object)
        inputs[body["signature_name"]] = np.asarray(instances, dtype=(
            object if isinstance(instances, np.ndarray) else np.float32))
    served = helpers.run_tf1(run.export_dir, inputs)
    images = inputs["classify"]
    assert images.shape == (2, *helpers.IMAGE_SHAPE)
    reference = helpers.reference_outputs(run, images)
    assert_close(served["classify"]["logits"], reference["logits"], dtype="float32",
                 terms=FORWARD_TERMS)
    first = helpers.reference_outputs(run, (images[:1] * 255).round().astype(np.uint8))
    assert sorted(served["encoded"]) == sorted(export.OUTPUTS)
    for key, value in served["encoded"].items():
        assert_close(value, first[key], dtype="float32", terms=FORWARD_TERMS, err_msg=key)


def test_a_clip_model_exported_on_jax_answers_in_tensorflow(jax_exports):
    """embed_image, embed_text (strings in) and zero_shot of the JAX-written image-text
    export answer here as the JAX model did."""
    want = dict(np.load(jax_exports / "image_text.npz"))
    images, captions = want.pop("images"), tf.constant(_clip_export.CAPTIONS)
    module = hub.load(str(jax_exports / "image_text"))
    assert sorted(module.signatures) == ["embed_image", "embed_text", "zero_shot"]
    assert want["bias"] == -10.0 and want["scale"] == pytest.approx(10.0)  # SigLIP's init.
    signature = module.signatures
    _clip_export.check_answers(
        signature["embed_image"](images=images)["embeddings"],
        signature["embed_text"](captions=captions)["embeddings"],
        signature["zero_shot"](images=images, prompts=captions[:2])["logits"], want)
