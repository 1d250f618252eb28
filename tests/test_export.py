"""SavedModel export for TF Hub, loading without the package, `.keras` round trips, bad input."""

import json
import os
import pathlib
import shutil

import keras
import numpy as np
import pytest

pytest.importorskip("tensorflow")
if keras.backend.backend() != "tensorflow":
    pytest.skip("SavedModel export needs the TensorFlow backend", allow_module_level=True)

import tensorflow as tf  # noqa: E402

from supcon_tf import encoders, export, methods  # noqa: E402
from supcon_tf.heads import ProjectionHead  # noqa: E402

import _export_helpers as helpers  # noqa: E402  (tests/ is on sys.path: conftest.py)
import _subprocess  # noqa: E402
from readme_blocks import readme_blocks  # noqa: E402
from tolerance import assert_close, bound  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
FORWARD_TERMS = helpers.FORWARD_TERMS  # tests/_export_helpers.py

# The float32 signatures, their uint8 forms and the encoded-image one.
SIGNATURES = sorted(["classify", "embed", "project", "serving_default", "encoded"]
                    + [f"{name}_uint8" for name in ("classify", "embed", "project",
                                                    "serving_default")])

# The README's three loading examples, read from the README; the tests run them with the
# export's path in place of "workdir/export".
SNIPPETS = {name: code for name, code in readme_blocks().items()
            if name in ("hub_load", "keras_layer", "tfsm_layer")}
assert len(SNIPPETS) == 3, "README lost a TF Hub loading example"


@pytest.fixture(scope="module")
def run():
    return helpers.trained_run()


def test_signatures_assets_and_checked_loading(run):
    images, _ = helpers.data(n=8, seed=3)
    ref = helpers.reference_outputs(run, images)
    serving = export.load_saved_model(run.export_dir, "serving_default")
    outputs = serving(images)
    assert sorted(serving.saved_model.signatures) == SIGNATURES
    assert sorted(outputs) == sorted(export.OUTPUTS)
    for key, value in outputs.items():
        assert_close(value.numpy(), ref[key], dtype="float32", terms=FORWARD_TERMS, err_msg=key)
    for name, key in export.SIGNATURE_OUTPUTS.items():
        out = serving.saved_model.signatures[name](images=tf.constant(images))
        assert list(out) == [key]
        assert_close(out[key].numpy(), ref[key], dtype="float32", terms=FORWARD_TERMS)
    # uint8 images at a float32 signature go through the module's function of that name.
    uint8 = (images * 255).round().astype(np.uint8)
    out = export.load_saved_model(run.export_dir, "embed")(uint8)
    assert_close(out["unnormalized_embeddings"].numpy(),
                 helpers.reference_outputs(run, uint8)["unnormalized_embeddings"],
                 dtype="float32", terms=FORWARD_TERMS)
    assert_close(np.linalg.norm(outputs["projection"], axis=-1), 1.0, dtype="float32",
                 terms=8)  # a norm over 8 dims
    assert export.read_class_names(run.export_dir) == list(helpers.CLASS_NAMES)
    info = export.read_config(run.export_dir)
    assert info["image_shape"] == list(helpers.IMAGE_SHAPE)
    assert info["config"] == json.loads(json.dumps(helpers.CONFIG))


def test_loads_without_the_package_in_hub_keraslayer_and_tfsmlayer(run, tmp_path):
    images, labels = helpers.data(n=16, seed=4)
    uint8 = (images * 255).round().astype(np.uint8)
    ref, ref8 = helpers.reference_outputs(run, images), helpers.reference_outputs(run, uint8)
    data = {"images": images, "images_uint8": uint8, "labels": labels}
    data.update({f"ref_{k}": v for k, v in ref.items()})
    data.update({f"ref8_{k}": v for k, v in ref8.items()})
    np.savez(tmp_path / "data.npz", **data)
    snippets = {name: code.replace('"workdir/export"', repr(run.export_dir))
                for name, code in SNIPPETS.items()}
    (tmp_path / "snippets.json").write_text(json.dumps(snippets))
    # -I: PYTHONPATH ignored, no user site, neither the script's folder nor the working
    # directory on sys.path; the script also blocks `supcon_tf` should it be installed.
    _subprocess.run_all(
        [["-I", str(HERE / "_hub_consumer.py"), run.export_dir, str(tmp_path / "data.npz"),
          str(tmp_path / "snippets.json"), str(tmp_path / "report.json")]],
        timeout=600, envs=[_subprocess.script_env(TF_USE_LEGACY_KERAS="1")])
    report = json.loads((tmp_path / "report.json").read_text())

    assert not report["supcon_tf_importable"] and not report["supcon_tf_imported"]
    assert report["signatures"] == SIGNATURES
    diffs = report["diffs"]
    for via in ("hub.load/signature", "hub.load/function", "hub.KerasLayer", "TFSMLayer"):
        assert {k for k in diffs if k.startswith(f"{via}/serving_default/")} == {
            f"{via}/serving_default/{key}" for key in export.OUTPUTS}
        for name, key in export.SIGNATURE_OUTPUTS.items():
            assert f"{via}/{name}/{key}" in diffs
    for name, key in export.SIGNATURE_OUTPUTS.items():
        assert f"hub.load/signature/{name}_uint8/{key}" in diffs
    assert {k for k in diffs if k.startswith("hub.load/signature/encoded/")} == {
        f"hub.load/signature/encoded/{key}" for key in export.OUTPUTS}
    # Every output of every float32 signature, 5 ways, and __call__; the uint8 and
    # encoded signatures through hub.load.
    assert len(diffs) == 5 * 8 + 4 + 8 + 5
    # Max |difference| per output (tests/_hub_consumer.py); outputs are O(1).
    tol = bound([1.0], dtype="float32", terms=FORWARD_TERMS)
    bad = {k: v for k, v in diffs.items() if not v <= tol}
    assert not bad, bad

    # Training mode: encoder conv/dense kernels, BN gammas/betas (synchronized BN in training).
    assert report["num_trainable_variables"] == len(run.encoder.weights) - 4
    assert report["grads_missing_or_zero"] == []
    assert report["num_bn_stats"] == 4 and report["bn_stats_changed"] == 4
    assert report["finetune_num_trainable"] == report["num_trainable_variables"]
    assert report["finetune_weights_changed"] == report["finetune_num_trainable"]
    assert report["finetune_loss_after"] < 0.9 * report["finetune_loss_before"]

    snippets = report["snippets"]
    assert snippets["hub_load"]["features"] == [4, 16]
    assert len(snippets["keras_layer"]["loss"]) == 2
    assert snippets["tfsm_layer"]["embeddings"] == [2, 16]


def test_export_refuses_bad_input(run, tmp_path):
    kwargs = dict(encoder=run.encoder, head=run.head, image_shape=helpers.IMAGE_SHAPE)
    with pytest.raises(ValueError, match="already exists; pass overwrite=True"):
        export.export_saved_model(run.export_dir, **kwargs)
    with pytest.raises(ValueError, match="image_shape"):
        export.export_saved_model(tmp_path / "a", encoder=run.encoder, image_shape=(8, 8))
    with pytest.raises(ValueError, match=r"match the encoder's input shape \(8, 8, 1\)"):
        export.export_saved_model(tmp_path / "a", encoder=run.encoder, image_shape=(16, 16, 1))
    with pytest.raises(ValueError, match="one name per class"):
        export.export_saved_model(tmp_path / "a", encoder=run.encoder,
                                  classifier_head=run.classifier.head,
                                  image_shape=helpers.IMAGE_SHAPE, class_names=["a"])
    with pytest.raises(ValueError, match="`encoder` .* is not built and has no weights"):
        export.export_saved_model(tmp_path / "a", image_shape=helpers.IMAGE_SHAPE,
                                  encoder=keras.Sequential([keras.layers.Dense(2)]))
    unbuilt = ProjectionHead(output_dim=4)
    with pytest.raises(ValueError, match="`head` .* is not built"):
        export.export_saved_model(tmp_path / "a", encoder=run.encoder, head=unbuilt,
                                  image_shape=helpers.IMAGE_SHAPE)
    fresh = encoders.get("small_cnn", input_shape=helpers.IMAGE_SHAPE, widths=(8, 16), dim=16)
    with pytest.raises(ValueError, match="looks untrained.*allow_untrained=True"):
        export.export_saved_model(tmp_path / "a", encoder=fresh, image_shape=helpers.IMAGE_SHAPE)
    assert not (tmp_path / "a").exists()


def test_overwrite_replaces_only_an_export_and_heads_are_optional(run, tmp_path,
                                                                  monkeypatch):
    kwargs = dict(encoder=run.encoder, image_shape=helpers.IMAGE_SHAPE, overwrite=True)
    # A folder of other files is not replaced: nothing in it is deleted.
    path = tmp_path / "export"
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"is not an export \(it holds notes.txt\); "
                                         "overwrite replaces only an export"):
        export.export_saved_model(path, **kwargs)
    assert (path / "notes.txt").read_text() == "mine"
    # An export is replaced; a write that fails (a full disk) leaves it and no staging.
    shutil.copytree(run.export_dir, path, dirs_exist_ok=True)
    (path / "notes.txt").unlink()
    before = sorted(os.listdir(path)), (path / "saved_model.pb").read_bytes()

    def full_disk(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "saved_model.pb; No space left "
                                               "on device")

    with monkeypatch.context() as patch:
        patch.setattr(tf.saved_model, "save", full_disk)
        with pytest.raises(tf.errors.ResourceExhaustedError):
            export.export_saved_model(path, **kwargs)
    assert sorted(os.listdir(tmp_path)) == ["export"]  # no staging folder left
    assert (sorted(os.listdir(path)), (path / "saved_model.pb").read_bytes()) == before
    export.export_saved_model(path, **kwargs)
    loaded = export.load_saved_model(path)
    assert sorted(loaded.signatures) == ["embed", "embed_uint8", "encoded", "serving_default",
                                         "serving_default_uint8"]
    images, _ = helpers.data(n=4, seed=5)
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    assert sorted(out) == ["embeddings", "unnormalized_embeddings"]
    assert_close(out["unnormalized_embeddings"].numpy(),
                 helpers.reference_outputs(run, images)["unnormalized_embeddings"],
                 dtype="float32", terms=FORWARD_TERMS)
    assert export.read_class_names(path) == []
    assert run.encoder.trainable is False  # The frozen encoder's flags are restored.


def test_loading_refuses_bad_input(run, tmp_path):
    with pytest.raises(ValueError, match="is not a SavedModel directory"):
        export.load_saved_model(tmp_path)
    with pytest.raises(ValueError, match="has no signature 'logits'; it has: " + ", ".join(
            repr(name) for name in SIGNATURES)):
        export.load_saved_model(run.export_dir, "logits")
    embed = export.load_saved_model(run.export_dir, "embed")
    with pytest.raises(ValueError, match=r"must have shape \[batch, 8, 8, 1\]; received "
                                         r"shape \[2, 16, 16, 1\]"):
        embed(np.zeros((2, 16, 16, 1), np.float32))
    with pytest.raises(ValueError, match=r"must have shape .*received shape \[8, 8, 1\]"):
        embed(np.zeros((8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="float32 in .0, 1. or uint8; received dtype float64"):
        embed(np.zeros((2, 8, 8, 1)))
    with pytest.raises(ValueError, match="received dtype int32"):
        embed(tf.zeros((2, 8, 8, 1), tf.int32))
    # A plain SavedModel without this package's signatures.
    plain = tf.Module()
    plain.f = tf.function(lambda x: {"y": x * 2},
                          input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(plain, str(tmp_path / "plain"), signatures={"double": plain.f})
    with pytest.raises(ValueError, match="has no signature 'serving_default'; it has: 'double'"):
        export.load_saved_model(tmp_path / "plain", "serving_default")


def test_keras_files_round_trip(run, tmp_path):
    images, labels = helpers.data(n=8, seed=6)
    path = export.save_keras(tmp_path / "supcon.keras", run.model)
    with pytest.raises(ValueError, match="already exists"):
        export.save_keras(tmp_path / "supcon.keras", run.model)
    with pytest.raises(ValueError, match="must end in '.keras'"):
        export.save_keras(tmp_path / "supcon.h5", run.model)
    with pytest.raises(ValueError, match="existing '.keras' file"):
        export.load_keras(tmp_path / "missing.keras")
    model = export.load_keras(path, compile=False)
    assert type(model) is methods.SupCon and type(model.head) is ProjectionHead
    assert model.head.sync_batch_norm and type(model.method_loss).__name__ == "SupConLoss"
    views = helpers.views(images)
    for key in ("representation", "projection"):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(views)[key]),
                                      keras.ops.convert_to_numpy(run.model(views)[key]))

    path = export.save_keras(tmp_path / "classifier.keras", run.classifier)
    classifier = export.load_keras(path, compile=False)
    assert type(classifier) is methods.LinearClassifier and classifier.freeze_encoder
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(classifier(images)),
                                  keras.ops.convert_to_numpy(run.classifier(images)))
    # The loaded method trains on.
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(views, labels, batch_size=8, epochs=1, verbose=0)


def test_preprocessing_and_regularization_losses(tmp_path):
    inputs = keras.Input(shape=(4, 4, 1))
    dense = keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.1))
    encoder = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    path = export.export_saved_model(tmp_path / "export", encoder=encoder, image_shape=(4, 4, 1),
                                     preprocessing=keras.layers.Rescaling(2.0, offset=-1.0))
    loaded = export.load_saved_model(path)
    kernel = keras.ops.convert_to_numpy(dense.kernel)
    assert_close([float(loss()) for loss in loaded.regularization_losses],
                 [0.1 * float(np.sum(kernel**2))], dtype="float32", terms=16 * 3)  # 48 squares
    images = np.random.default_rng(0).random((2, 4, 4, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(encoder(2.0 * images - 1.0))
    assert_close(loaded(images).numpy(), expected, dtype="float32", terms=FORWARD_TERMS)
    uint8 = np.array([[0, 255], [255, 0]], np.uint8).reshape(1, 2, 2, 1).repeat(2, 1).repeat(2, 2)
    expected = keras.ops.convert_to_numpy(encoder(2.0 * uint8.astype("float32") / 255 - 1.0))
    assert_close(loaded(uint8).numpy(), expected, dtype="float32", terms=FORWARD_TERMS)
