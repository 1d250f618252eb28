"""The linear-evaluation report: numbers against NumPy, files written, bad input."""

import json

import keras
import numpy as np
import pytest

from png_reference import png_size
from supcon_tf import encoders, evaluation, methods
from tolerance import assert_close
from supcon_tf.evaluation.plots import confusion_figsize


@pytest.fixture(autouse=True)
def one_openmp_thread():
    """t-SNE on one thread: its OpenMP workers spin badly on a busy 2-core CI box."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        yield


def test_classification_summary_hand_values():
    logits = np.array([[3, 2, 1, 0, -1, -2],   # true 0: top-1 right
                       [0, 1, 2, 3, 4, 5],     # true 0: ranked last, outside top-5
                       [5, 4, 3, 2, 1, 0],     # true 1: second, inside top-5
                       [0, 0, 9, 0, 0, 0]], np.float32)
    summary = evaluation.classification_summary(logits, np.array([0, 0, 1, 2]), 6)
    assert summary["top1"] == 0.5
    assert summary["top5"] == 0.75
    assert summary["top5_k"] == 5
    assert summary["per_class_accuracy"][:3] == [0.5, 0.0, 1.0]
    assert np.isnan(summary["per_class_accuracy"][3])  # No samples of class 3.
    expected = np.zeros((6, 6), int)
    expected[0, 0] = expected[0, 5] = expected[1, 0] = expected[2, 2] = 1
    np.testing.assert_array_equal(summary["confusion_matrix"], expected)
    assert summary["support"] == [2, 1, 1, 0, 0, 0]


def trained_classifier(classes=3):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, 60)
    images = rng.random((60, 8, 8, 1), dtype=np.float32) * 0.3
    for c in range(classes):
        images[labels == c, :, 2 * c:2 * c + 3] += 0.7
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16)
    classifier = methods.LinearClassifier(encoder, num_classes=classes)
    classifier.compile(optimizer=keras.optimizers.Adam(0.05))
    classifier.fit(images, labels, batch_size=20, epochs=2, verbose=0)
    return classifier, images, labels


def test_linear_eval_report_writes_numbers_and_files(tmp_path):
    classifier, images, labels = trained_classifier()
    config = {"method": "supcon", "model": {"encoder": "small_cnn", "temperature": 0.1},
              "training": {"epochs": 2, "batch_size": 20, "note": "not a key setting"}}
    workdir = tmp_path / "run" / "linear_eval"
    report = evaluation.linear_eval_report(str(workdir), classifier, (images, labels),
                                           ["left", "middle", "right"], config=config,
                                           batch_size=16)
    logits = classifier.predict(images, verbose=0)
    # Accuracies: float32 means over the 60 samples (a class's samples).
    assert_close(report["top1"], np.mean(logits.argmax(-1) == labels), dtype="float32",
                 terms=60)
    assert report["top5"] == 1.0 and report["top5_k"] == 3  # top-k capped at 3 classes
    for c in range(3):
        mask = labels == c
        assert_close(report["per_class_accuracy"][c], np.mean(logits[mask].argmax(-1) == c),
                     dtype="float32", terms=int(mask.sum()))
    assert np.sum(report["confusion_matrix"]) == 60

    saved = json.loads((workdir / "report.json").read_text())
    assert saved["top1"] == report["top1"]
    assert saved["class_names"] == ["left", "middle", "right"]
    assert saved["settings"] == {"method": "supcon", "model.encoder": "small_cnn",
                                 "model.temperature": 0.1, "training.epochs": 2,
                                 "training.batch_size": 20}
    assert saved["config"]["training.note"] == "not a key setting"

    markdown = (workdir / "report.md").read_text()
    assert f"| top-1 | {100 * report['top1']:.2f}% |" in markdown
    assert "| `model.temperature` | `0.1` |" in markdown
    assert "| middle | " in markdown and "not a key setting" not in markdown
    assert "![confusion matrix](confusion_matrix.png)" in markdown

    side = round(confusion_figsize(3) * 100)
    assert png_size(workdir / "confusion_matrix.png") == (side, side)


def test_linear_eval_report_bad_input(tmp_path):
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16)
    untrained = methods.LinearClassifier(encoder, num_classes=3)
    data = (np.zeros((4, 8, 8, 1), np.float32), np.zeros(4, int))
    with pytest.raises(ValueError, match="`classifier` has no trained weights"):
        evaluation.linear_eval_report(str(tmp_path), untrained, data, None)
    with pytest.raises(ValueError, match="`classifier` has no trained weights"):
        evaluation.linear_eval_report(str(tmp_path), None, data, None)
    classifier, images, labels = trained_classifier()
    with pytest.raises(ValueError, match=r"one name per class \(3\); received 2"):
        evaluation.linear_eval_report(str(tmp_path), classifier, (images, labels), ["a", "b"])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        evaluation.linear_eval_report(str(tmp_path), classifier, (images, labels + 1), None)
    assert not (tmp_path / "report.json").exists()


def test_flatten_config_handles_config_dicts():
    ml_collections = pytest.importorskip("ml_collections")
    config = ml_collections.ConfigDict({"method": "simclr", "optim": {"lr": 0.3,
                                                                       "betas": (0.9, 0.99)}})
    assert evaluation.flatten_config(config) == {"method": "simclr", "optim.lr": 0.3,
                                                 "optim.betas": [0.9, 0.99]}
    assert evaluation.key_settings(config) == {"method": "simclr", "optim.lr": 0.3}


def test_evaluate_run_writes_everything(tmp_path):
    tf = pytest.importorskip("tensorflow")
    classifier, images, labels = trained_classifier()
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    out = evaluation.evaluate_run(str(tmp_path / "eval"), classifier.encoder, data,
                                  ["l", "m", "r"], classifier=classifier, sample=40,
                                  projector_sample=50)
    assert out["report"]["num_samples"] == 60
    assert png_size(out["embedding_plot"]) == (800, 800)
    assert out["projector"]["num_points"] == 50
    assert png_size(out["projector"]["sprite"]) == (8 * 8, 8 * 8)  # 50 images: 8x8 grid
    names = {p.name for p in (tmp_path / "eval").iterdir()}
    assert {"report.json", "report.md", "confusion_matrix.png", "embedding_tsne.png",
            "projector"} <= names


def test_evaluate_run_needs_a_trained_encoder(tmp_path):
    data = (np.zeros((4, 8, 8, 1), np.float32), np.zeros(4, int))
    with pytest.raises(ValueError, match="`encoder` has no trained weights"):
        evaluation.evaluate_run(str(tmp_path), None, data)
    with pytest.raises(ValueError, match="`encoder` has no trained weights"):
        evaluation.evaluate_run(str(tmp_path), keras.Sequential([keras.layers.Dense(3)]), data)
