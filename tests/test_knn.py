"""Weighted kNN against a NumPy reference and hand values; the KNNMonitor callback in fit."""

import keras
import numpy as np
import pytest

from supcon_tf import encoders, evaluation, methods
from supcon_tf.heads import ProjectionHead
from tolerance import assert_close


def numpy_knn(query, ref, ref_labels, num_classes, k, temperature):
    """Wu et al. 2018's weighted kNN, written plainly: cosine top-k, votes exp(sim / T)."""
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    r = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    sim = q.astype(np.float64) @ r.T.astype(np.float64)
    scores = np.zeros((len(query), num_classes))
    for i in range(len(query)):
        for j in np.argsort(-sim[i])[:k]:
            scores[i, ref_labels[j]] += np.exp(sim[i, j] / temperature)
    return scores.argmax(axis=1), scores


@pytest.mark.parametrize("k,temperature,chunk_size", [
    (1, 0.1, 1024), (7, 0.1, 4), (7, 0.5, 16), (40, 0.07, 8), (101, 0.1, 1024)])
def test_knn_predict_matches_numpy(k, temperature, chunk_size):
    rng = np.random.default_rng(k)
    query = rng.standard_normal((37, 8)).astype(np.float32)
    ref = rng.standard_normal((101, 8)).astype(np.float32)
    ref_labels = rng.integers(0, 5, 101)
    expected_pred, expected_scores = numpy_knn(query, ref, ref_labels, 5, k, temperature)
    pred, scores = evaluation.knn_predict(query, ref, ref_labels, 5, k=k,
                                          temperature=temperature, chunk_size=chunk_size)
    np.testing.assert_array_equal(pred, expected_pred)
    # float32 votes exp(sim / t), sims over 8 dims: a sim's rounding (8 eps) is a relative
    # 8 eps / t of its vote; k votes summed. Magnitude: the largest score.
    assert_close(scores, expected_scores, dtype="float32", terms=k + int(np.ceil(8 / temperature)))


def test_knn_weights_by_similarity_not_majority():
    # Query along x. One class-0 neighbour at cos 1, two class-1 neighbours at cos 0.5:
    # votes exp(1/0.1) = 22026 for class 0 against 2 exp(0.5/0.1) = 297 for class 1,
    # although class 1 holds the majority of the k = 3 neighbours.
    ref = np.array([[1.0, 0.0], [0.5, np.sqrt(0.75)], [0.5, -np.sqrt(0.75)], [-1.0, 0.0]])
    ref_labels = np.array([0, 1, 1, 1])
    pred, scores = evaluation.knn_predict(np.array([[3.0, 0.0]]), ref, ref_labels, 2, k=3,
                                          temperature=0.1)
    assert_close(scores[0], [np.exp(10.0), 2 * np.exp(5.0)], dtype="float32",
                 terms=3 + int(2 / 0.1))  # as above: 3 votes, sims over 2 dims, t = 0.1
    assert pred[0] == 0
    # A high temperature flattens the weights into a majority vote.
    pred, _ = evaluation.knn_predict(np.array([[3.0, 0.0]]), ref, ref_labels, 2, k=3,
                                     temperature=100.0)
    assert pred[0] == 1


def test_knn_accuracy_counts_correct_queries():
    ref = np.eye(3, dtype=np.float32)
    query = np.array([[1, 0.1, 0], [0, 1, 0.1], [0.1, 0, 1], [1, 0, 0.2]], np.float32)
    assert evaluation.knn_accuracy(query, [0, 1, 2, 2], ref, [0, 1, 2], k=1) == 0.75


def test_knn_bad_input():
    ref, labels = np.ones((10, 4)), np.zeros(10, int)
    with pytest.raises(ValueError, match=r"`k` must be <= the number of reference samples "
                                         r"\(10\); received k=11"):
        evaluation.knn_predict(np.ones((2, 4)), ref, labels, 2, k=11)
    with pytest.raises(ValueError, match="`k` must be <="):
        evaluation.KNNMonitor((np.ones((10, 8, 8, 1)), labels), (ref, labels), k=200)
    with pytest.raises(ValueError, match="same dim"):
        evaluation.knn_predict(np.ones((2, 3)), ref, labels, 2, k=1)
    with pytest.raises(ValueError, match=r"`ref_labels` must lie in \[0, num_classes=2\)"):
        evaluation.knn_predict(np.ones((2, 4)), ref, labels + 2, 2, k=1)
    with pytest.raises(ValueError, match="`temperature` must be > 0"):
        evaluation.knn_predict(np.ones((2, 4)), ref, labels, 2, k=1, temperature=0.0)
    with pytest.raises(ValueError, match="`every_n_epochs` must be > 0"):
        evaluation.KNNMonitor((ref, labels), (ref, labels), every_n_epochs=0, k=1)


def class_data(n, seed, classes=3):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.3
    for c in range(classes):
        images[labels == c, :, 2 * c:2 * c + 3] += 0.7
    return images, labels


def test_monitor_logs_knn_top1_to_history_progbar_and_tensorboard(tmp_path, capsys):
    with_tensorboard = keras.backend.backend() == "tensorflow" and _has_tensorboard()
    images, labels = class_data(96, 0)
    reference, heldout = class_data(60, 1), class_data(30, 2)
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16)
    model = methods.SupCon(encoder, ProjectionHead(output_dim=8))
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    monitor = evaluation.KNNMonitor(reference, heldout, every_n_epochs=2, k=5, batch_size=16)
    seen = []  # What a later callback (TensorBoard, CSVLogger, ...) receives in its logs.
    later = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(logs.get("knn_top1")))
    callbacks = [monitor, later]
    if with_tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(tmp_path / "tb")))
    views = np.stack([images, images[:, :, ::-1]], axis=1)
    history = model.fit(views, labels, batch_size=32, epochs=3, verbose=2,
                        callbacks=callbacks)

    # Evaluated after epochs 2 (every_n_epochs) and 3 (the last), not after epoch 1.
    assert [epoch for epoch, _ in monitor.history] == [1, 2]
    assert history.history["knn_top1"] == [acc for _, acc in monitor.history]
    assert seen == [None] + history.history["knn_top1"]
    assert "knn_top1:" in capsys.readouterr().out
    # The last value is the kNN accuracy of the final encoder, recomputed independently.
    ref_emb = encoder.predict(reference[0], verbose=0)
    query_emb = encoder.predict(heldout[0], verbose=0)
    pred, _ = numpy_knn(query_emb, ref_emb, reference[1], 3, 5, 0.1)
    assert_close(history.history["knn_top1"][-1], np.mean(pred == heldout[1]),
                 dtype="float32", terms=len(heldout[1]))  # an accuracy: a float32 mean

    if with_tensorboard:
        import tensorflow as tf

        tags = set()
        for path in (tmp_path / "tb" / "train").iterdir():
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                tags.update(value.tag for value in event.summary.value)
        assert "epoch_knn_top1" in tags


def _has_tensorboard():
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def test_monitor_keeps_labels_aligned_with_a_shuffled_dataset():
    tf = pytest.importorskip("tensorflow")
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16)
    reference, heldout = class_data(60, 1), class_data(30, 2)
    from_arrays = evaluation.KNNMonitor(reference, heldout, k=5, encoder=encoder).evaluate()
    shuffled = [tf.data.Dataset.from_tensor_slices(d).shuffle(64, seed=s).batch(16)
                for s, d in enumerate((reference, heldout))]
    monitor = evaluation.KNNMonitor(*shuffled, k=5, encoder=encoder)
    assert_close(monitor.evaluate(), from_arrays, dtype="float32", terms=30)  # mean of 30
    assert 0.0 <= from_arrays <= 1.0


def test_predict_with_labels_bad_data():
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16)
    with pytest.raises(ValueError, match="holds 4 images but 3 labels"):
        evaluation.predict_with_labels(encoder, (np.ones((4, 8, 8, 1)), np.zeros(3)))
    with pytest.raises(ValueError, match=r"must be a tuple `\(images, labels\)`"):
        evaluation.predict_with_labels(encoder, np.ones((4, 8, 8, 1)))


def test_predicting_with_many_models_logs_no_retracing_warning(caplog):
    """An evaluation predicts with several models (each traced per batch shape); TensorFlow
    would count those traces as one function retraced and warn."""
    images, labels = np.random.default_rng(0).random((10, 4, 4, 1)), np.arange(10) % 2
    with caplog.at_level("WARNING"):
        for _ in range(6):
            model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                      keras.layers.Dense(2)])
            outputs, got = evaluation.predict_with_labels(model, (images, labels), batch_size=4)
            assert_close(outputs, keras.ops.convert_to_numpy(model(images)), dtype="float32",
                         terms=16)  # a dense layer over 16 inputs
            np.testing.assert_array_equal(got, labels)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
