"""Distances, miners and reducers against float64 NumPy statements (tests/metric_reference.py)."""

import keras
import numpy as np
import pytest
from keras import ops

from metric_reference import (
    _distance,
    distance_weights_reference,
    multi_similarity_pairs_reference,
    multi_similarity_reference,
    triplet_reference,
)
from supcon_tf import losses
from supcon_tf.losses import distances, miners, reducers
from supcon_tf.losses.pairwise import global_pairs
from tolerance import assert_close

RNG = np.random.default_rng(1)
X = RNG.standard_normal((8, 4))
LABELS = np.array([0, 1, 0, 2, 1, 0, 3, 2])  # Class 3 has one sample.
REDUCERS = ["mean", "non_zero", "per_anchor", {"name": "divisor", "divisor": 3.0},
            {"name": "class_weighted", "weights": [1.0, 0.5, 2.0, 3.0]}]
TRIPLET_MINERS = ["batch_hard", "batch_easy_hard", "semi_hard", "all"]


def _np(x):
    return ops.convert_to_numpy(x)


# float64 inputs stay float64 (JAX: only with x64 enabled, else float32).
DTYPE = _np(ops.convert_to_tensor(X)).dtype.name


@pytest.mark.parametrize("name", distances.DISTANCES)
def test_distances_match_numpy_and_round_trip(name):
    distance = distances.get(name)
    b = X[::-1] * 2.0 + 0.3  # No row parallel to one of X (sqrt of a rounded 0).
    got = _np(distance.dissimilarity(X, b))
    want = np.array([[_distance(a, c, name) for c in b] for a in X])
    assert_close(got, want, dtype=DTYPE, terms=4, magnitude=np.abs(want).max())
    assert_close(_np(distance.similarity(X, b)), -got if not distance.is_similarity
                 else _np(distance.pairwise(X, b)), dtype=DTYPE)
    restored = distances.get(keras.saving.serialize_keras_object(distance))
    assert restored == distance and restored is not distance


def test_l2_distance_of_a_row_to_itself_has_a_finite_gradient():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("GradientTape")
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(distances.L2Distance().pairwise(x, x))
    grad = tape.gradient(total, x).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0


@pytest.mark.parametrize("mining, reducer", list(zip(TRIPLET_MINERS * 2, REDUCERS + ["mean"])),
                         ids=lambda r: r if isinstance(r, str) else r["name"])
def test_triplet_miners_with_each_reducer(mining, reducer):
    kwargs = dict(mining=mining, reducer=reducer, margin=0.3, distance="l2_unit")
    got = _np(losses.triplet_loss(X, LABELS, **kwargs))
    want = triplet_reference(X, LABELS, **kwargs)
    assert got[6] == 0 and want[6] == 0  # A class with one sample: no triplet.
    assert np.count_nonzero(want) >= 3
    assert_close(got, want, dtype=DTYPE, terms=8 * 8 * 4, magnitude=np.abs(want).max())
    # The Keras class: the mean over the batch of the per-anchor values.
    loss = losses.TripletLoss(**kwargs)
    assert_close(float(_np(loss(LABELS, X.astype("float32")))), want.mean(), dtype="float32",
                 terms=8 * 8 * 4, magnitude=max(1.0, np.abs(want).max()))


def test_no_triplet_survives_gives_zero_not_nan():
    same = np.zeros(8, int)  # One class: no negative anywhere.
    apart = np.array([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0], [-1.0, 0.01]])  # Easy triplets.
    for reducer, mining in zip(REDUCERS, TRIPLET_MINERS * 2):
        for x, labels in ((X, same), (apart, np.array([0, 0, 1, 1]))):
            got = _np(losses.triplet_loss(x, labels, mining=mining, reducer=reducer))
            want = triplet_reference(x, labels, mining=mining, reducer=reducer)
            assert np.all(got == 0) and np.all(want == 0), (mining, reducer, got)
        got = _np(losses.multi_similarity_loss(X, same, reducer=reducer))
        assert np.all(got == 0)


def test_multi_similarity_miner_matches_the_paper_pairs():
    references, positives, negatives = global_pairs(ops.convert_to_tensor(X), LABELS)
    d = distances.CosineSimilarity().dissimilarity(X, references)
    pairs = miners.MultiSimilarityMiner(epsilon=0.1)(d, positives, negatives)
    want_positive, want_negative = multi_similarity_pairs_reference(X, LABELS, epsilon=0.1)
    assert want_negative.sum() >= 4 and want_positive.sum() >= 2
    np.testing.assert_array_equal(_np(pairs.positive), want_positive)
    np.testing.assert_array_equal(_np(pairs.negative), want_negative)


@pytest.mark.parametrize("miner, reducer, distance", [
    ("batch_hard", None, "cosine"),
    ("semi_hard", "non_zero", "cosine"),
    ("all", {"name": "class_weighted", "weights": [1.0, 0.5, 2.0, 3.0]}, "dot"),
])
def test_pair_losses_take_triplet_miners_and_reducers(miner, reducer, distance):
    kwargs = dict(miner=miner, reducer=reducer, distance=distance)
    x = X / 2.0 if distance == "dot" else X
    got = _np(losses.multi_similarity_loss(x, LABELS, **kwargs))
    want = multi_similarity_reference(x, LABELS, **kwargs)
    assert np.count_nonzero(want) >= 3
    assert_close(got, want, dtype=DTYPE, terms=8 * 8, magnitude=max(1, np.abs(want).max()))


def test_distance_weighted_probabilities_and_seeded_draws():
    references, positives, negatives = global_pairs(ops.convert_to_tensor(X), LABELS)
    unit = distances.L2Distance(normalize=True).pairwise(X, references)
    got = _np(miners.distance_weights(unit, negatives, 4))
    want = distance_weights_reference(X, LABELS)
    assert_close(got, want, dtype=DTYPE, terms=8 * 4)
    d = distances.CosineSimilarity().dissimilarity(X, references)

    def draws(miner, times):
        """How often each (anchor, reference) was drawn: every column of a call is a draw
        from its anchor's row (the positives' columns are the ones the loss uses)."""
        counts = np.zeros((8, 8))
        for _ in range(times):
            index = _np(miner(d, positives, negatives, ops.convert_to_tensor(X),
                              references).negative_index)
            np.add.at(counts, (np.repeat(np.arange(8), 8), index.ravel()), 1)
        return counts

    first, again = draws(miners.DistanceWeightedMiner(seed=5), 1), draws(
        miners.DistanceWeightedMiner(seed=5), 1)
    np.testing.assert_array_equal(first, again)  # Seeded: the same draws.
    counts = draws(miners.DistanceWeightedMiner(seed=0), 40)
    assert np.all(counts[want == 0] == 0)  # Only negatives that can give a loss.
    totals = counts.sum(1, keepdims=True)
    rows = totals[:, 0] > 0
    frequency = counts[rows] / totals[rows]
    spread = 5 * np.sqrt(want[rows] * (1 - want[rows]) / totals[rows]) + 1e-9
    assert np.all(np.abs(frequency - want[rows]) <= spread)


def test_losses_with_part_objects_round_trip():
    loss = losses.TripletLoss(mining=miners.DistanceWeightedMiner(seed=3),
                              distance=distances.L2Distance(normalize=True),
                              reducer=reducers.ClassWeightedReducer([1.0, 2.0, 1.0, 1.0]))
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert restored.get_config() == loss.get_config()
    assert isinstance(restored.mining, miners.DistanceWeightedMiner) and restored.mining.seed == 3
    x = X.astype("float32")
    assert float(_np(restored(LABELS, x))) == float(_np(loss(LABELS, x)))
    named = losses.MultiSimilarityLoss(miner="batch_hard", reducer={"name": "divisor",
                                                                   "divisor": 4})
    assert named.get_config()["miner"] == "batch_hard"
    assert isinstance(named._parts["reducer"], reducers.DivisorReducer)


@pytest.mark.parametrize("make, match", [
    (lambda: losses.TripletLoss(mining="multi_similarity"),
     r"TripletLoss needs triplets, but the miner MultiSimilarityMiner\(epsilon=0.1\) "
     r"returns pairs"),
    (lambda: losses.TripletLoss(mining="hard"), r"`mining` must be one of 'batch_hard'"),
    (lambda: losses.MultiSimilarityLoss(distance="l2"),
     r"`distance` of MultiSimilarityLoss must be a similarity.*L2Distance"),
    (lambda: losses.CircleLoss(miner="random"), r"`miner` must be one of"),
    (lambda: losses.CircleLoss(reducer="sum"), r"`reducer` must be one of 'mean'"),
    (lambda: reducers.DivisorReducer(0), r"`divisor` must be > 0; received divisor=0"),
    (lambda: reducers.ClassWeightedReducer([1.0, "x"]), r"`weights\[1\]` must be a number"),
    (lambda: miners.DistanceWeightedMiner(seed=-1), r"`seed` must be an integer >= 0"),
])
def test_bad_parts_name_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_cross_batch_memory_rows_are_more_references():
    """Anchors X[:4] with X[4:] in memory: each anchor meets the same 7 others as in the
    full batch; memory rows not valid are in neither mask."""
    full = triplet_reference(X, LABELS)  # Batch-hard, per anchor: the rows are anchors.
    memory = (X[4:], LABELS[4:], np.ones(4, bool))
    got = _np(losses.triplet_loss(X[:4], LABELS[:4], memory=memory))
    assert_close(got, full[:4], dtype=DTYPE, terms=8 * 4)
    partial = (X[4:], LABELS[4:], np.array([True, True, False, False]))
    got = _np(losses.multi_similarity_loss(X[:4], LABELS[:4], memory=partial))
    assert_close(got, multi_similarity_reference(X[:6], LABELS[:6])[:4], dtype=DTYPE,
                 terms=8 * 4)


def test_cross_batch_memory_needs_a_pair_loss():
    from supcon_tf import encoders, methods

    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4,), dim=4)
    with pytest.raises(ValueError, match=r"`xbm_size` \(cross-batch memory\) needs a pair- "
                                         r"or triplet-based loss.*ProxyAnchorLoss"):
        methods.MetricLearning(encoder, loss=losses.ProxyAnchorLoss(3), xbm_size=64)
    with pytest.raises(ValueError, match=r"`xbm_start_step` must be an integer >= 0"):
        methods.MetricLearning(encoder, xbm_size=64, xbm_start_step=-1)


def test_xbm_keeps_the_method_contract(tmp_path, monkeypatch):
    """The method contract (fit, .keras round trip restoring the memory bit for bit, the
    next step equal) with a cross-batch memory of 32 rows used from step 1 on."""
    import test_method_contract as contract

    monkeypatch.setitem(contract.SPECS, "metric", (
        dict(loss=losses.TripletLoss(mining="semi_hard"), xbm_size=32, xbm_start_step=1),
        dict(hidden_dims=(8,), output_dim=4), 1))
    contract.test_fit_then_keras_round_trip_restores_every_variable("metric", tmp_path)
    model = contract.build("metric")
    model.fit(*contract.batches("metric", steps=2), batch_size=contract.BATCH, verbose=0)
    assert int(_np(model.memory.count)) == 2 * contract.BATCH
    assert set(_np(model.memory.labels)[:16].tolist()) == {0, 1, 2, 3}
