"""One input rule for every public function (supcon_tf/inputs.py), and the silent wrong
results the peers' code found (issue 20): each case fails with a message that names the
parameter, or now gives the value a float64 statement of the formula gives."""

import keras
import numpy as np
import pytest
from keras import ops

from ssl_reference import sinkhorn_reference
from supcon_tf import evaluation, losses, methods
from supcon_tf.heads import ProjectionHead
from supcon_tf.encoders import get as get_encoder
from tolerance import assert_close

RNG = np.random.default_rng(3)


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype("float32")


Q, K, QUEUE = unit(RNG.standard_normal((4, 8))), unit(RNG.standard_normal((4, 8))), \
    unit(RNG.standard_normal((6, 8)))
EMB, LABELS = unit(RNG.standard_normal((8, 8))), np.array([0, 1, 0, 1, 2, 2, 3, 3])


def nan_at(x, index=(0, 0)):
    x = np.array(x, copy=True)
    x[index] = np.nan
    return x


# -------------------------------------------------------------- 1. non-finite values


@pytest.mark.parametrize("call, name", [
    (lambda: losses.moco_loss(Q, K, nan_at(QUEUE)), "queue"),
    (lambda: losses.moco_loss(nan_at(Q), K, QUEUE), "query"),
    (lambda: losses.queue_supcon_loss(Q, nan_at(K), LABELS[:4], QUEUE, LABELS[:6]), "key"),
    (lambda: losses.sinkhorn_knopp(nan_at(EMB)), "scores"),
    (lambda: losses.sinkhorn_knopp(EMB[:4], queue_scores=nan_at(EMB[4:])), "queue_scores"),
    (lambda: losses.swav_loss(nan_at(EMB.reshape(4, 2, 8), (0, 1, 0))), "scores"),
    (lambda: losses.triplet_loss(nan_at(EMB), LABELS), "embeddings"),
    (lambda: losses.multi_similarity_loss(nan_at(EMB), LABELS), "embeddings"),
    (lambda: losses.circle_loss(nan_at(EMB), LABELS), "embeddings"),
    (lambda: losses.proxy_anchor_loss(nan_at(EMB[:, :4]), LABELS), "similarities"),
    (lambda: losses.byol_loss(nan_at(EMB.reshape(4, 2, 8), (1, 0, 0)), EMB.reshape(4, 2, 8)),
     "predictions"),
    (lambda: losses.simsiam_loss(EMB.reshape(4, 2, 8), nan_at(EMB.reshape(4, 2, 8), (0, 0, 3))),
     "targets"),
    (lambda: evaluation.retrieval_metrics(nan_at(EMB), LABELS), "query_emb"),
    (lambda: evaluation.retrieval_metrics(EMB, LABELS, nan_at(EMB), LABELS), "ref_emb"),
    (lambda: evaluation.knn_accuracy(EMB, LABELS, nan_at(EMB), LABELS, k=2), "ref_emb"),
])
def test_non_finite_inputs_are_refused(call, name):
    with pytest.raises(ValueError, match=rf"`{name}` must be finite; received 1 NaN"):
        call()


# ------------------------------------------------------- 2. shapes of the queue losses


@pytest.mark.parametrize("call, message", [
    (lambda: losses.moco_loss(Q, K, unit(RNG.standard_normal((6, 5)))),
     r"`queue` feature size \(5\) must equal `query`'s \(8\); received shapes "
     r"queue=\(6, 5\) and query=\(4, 8\)"),
    (lambda: losses.moco_loss(Q, K[:3], QUEUE),
     r"`key` batch size \(3\) must equal `query`'s \(4\); received shapes key=\(3, 8\)"),
    (lambda: losses.moco_loss(Q, K, QUEUE, queue_mask=np.ones(5)),
     r"`queue_mask` length \(5\) must equal `queue`'s \(6\)"),
    (lambda: losses.queue_supcon_loss(Q, K, LABELS[:4], QUEUE[:, :4], LABELS[:6]),
     r"`queue` feature size \(4\) must equal `query`'s \(8\)"),
    (lambda: losses.queue_supcon_loss(Q, K, LABELS[:4], QUEUE, LABELS[:5]),
     r"`queue_labels` length \(5\) must equal `queue`'s \(6\)"),
    (lambda: losses.moco_loss(Q[0], K, QUEUE), r"`query` must have rank 2, shape \[batch, dim\]"),
])
def test_queue_shape_mismatches_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------- 3. the label rule


@pytest.mark.parametrize("call", [
    lambda: evaluation.retrieval_metrics(EMB, LABELS + 0.5),
    lambda: evaluation.knn_accuracy(EMB, LABELS, EMB, LABELS.astype("float32") + 0.5, k=2),
    lambda: evaluation.as_class_ids(np.array([0.0, 1.0])),
])
def test_float_class_ids_are_refused_not_truncated(call):
    with pytest.raises(ValueError, match="must have an integer dtype"):
        call()


def test_one_rule_for_negative_ids_and_one_hot_rows():
    with pytest.raises(ValueError, match="`query_labels` must be non-negative class ids"):
        evaluation.retrieval_metrics(EMB, LABELS - 1)
    with pytest.raises(ValueError, match="must hold only 0 and 1"):
        evaluation.as_class_ids(np.full((3, 2), 0.5))
    np.testing.assert_array_equal(evaluation.as_class_ids(np.eye(3)[[2, 0, 1]]), [2, 0, 1])


# --------------------------------------------------- 5. Keras-natural defaults (BYOL fit)


def test_byol_takes_its_schedule_length_from_fit():
    keras.utils.set_random_seed(0)
    encoder = get_encoder("small_cnn", input_shape=(8, 8, 1), widths=(4, 8), dim=8)
    model = methods.BYOL(encoder, ProjectionHead((8,), 4, normalize=False),
                         predictor_hidden_dims=(8,))
    model.compile(optimizer="sgd")
    views = RNG.random((12, 2, 8, 8, 1)).astype("float32")
    model.fit(views, epochs=2, batch_size=4, verbose=0)  # 2 epochs x 3 steps.
    assert model.teacher.total_steps == 6 and int(model.teacher.step.value) == 6
    # The cosine schedule ran over those 6 steps: the next update uses step 5's momentum.
    want = 1.0 - (1.0 - 0.996) * (np.cos(np.pi * 5 / 6) + 1.0) / 2.0
    assert_close(float(ops.convert_to_numpy(model.teacher.current_momentum())), want)


def test_byol_without_a_schedule_length_says_what_to_pass():
    encoder = get_encoder("small_cnn", input_shape=(8, 8, 1), widths=(4, 8), dim=8)
    model = methods.BYOL(encoder, ProjectionHead((8,), 4, normalize=False),
                         predictor_hidden_dims=(8,))
    model(np.zeros((2, 2, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="`total_steps` must be set.*train with `fit`"):
        model(np.zeros((2, 2, 8, 8, 1), "float32"), training=True)


# ------------------------------------------- 6. what the peers' code found wrong silently


def test_sinkhorn_is_finite_and_exact_at_a_small_epsilon():
    # Prototype 0 near every sample, prototype 2 far from all: with one global maximum
    # its column underflows to 0 in float32 (0 / 0: all-NaN codes) at epsilon 0.01.
    scores = np.stack([0.95 - 0.05 * RNG.random(6), RNG.uniform(-0.5, 0.5, 6),
                       -0.95 + 0.05 * RNG.random(6)], axis=1).astype("float32")
    epsilon, iterations = 0.01, 3
    got = ops.convert_to_numpy(losses.sinkhorn_knopp(scores, epsilon, iterations))
    assert np.all(np.isfinite(got))
    want = sinkhorn_reference(scores, epsilon, iterations)  # float64: no underflow there.
    # exp(s / epsilon) multiplies the scores' rounding by 1 / epsilon; each iteration sums
    # over the 6 samples and the 3 prototypes.
    assert_close(got, want, terms=iterations * (6 + 3), magnitude=1 / epsilon)
    assert want[:, 2].sum() > 0.9  # The far prototype still gets its share (B / K = 2).


def test_sinkhorn_ignores_queue_rows_the_mask_leaves_out():
    scores = EMB[:5, :3]
    plain = ops.convert_to_numpy(losses.sinkhorn_knopp(scores, 0.05, 3))
    for value in (1.0, 40.0, -40.0):  # A masked row far above or below the others.
        queued = np.full((2, 3), value, "float32")
        got = ops.convert_to_numpy(losses.sinkhorn_knopp(scores, 0.05, 3, queue_scores=queued,
                                                         queue_mask=np.array([0, 0])))
        assert_close(got, plain, terms=3 * (5 + 3), magnitude=1 / 0.05)


@pytest.mark.parametrize("call, name", [
    (lambda raw: losses.moco_loss(raw, K, QUEUE), "query"),
    (lambda raw: losses.moco_loss(Q, raw, QUEUE), "key"),
    (lambda raw: losses.queue_supcon_loss(Q, K, LABELS[:4], np.concatenate([raw, raw[:2]]),
                                          LABELS[:6]), "queue"),
    (lambda raw: losses.contrastive_loss(raw.reshape(2, 2, 8)), "features"),
])
def test_raw_features_are_refused_where_unit_rows_are_assumed(call, name):
    raw = 3.0 * Q  # Norm 3: peers normalize, so a silent loss here would differ from theirs.
    with pytest.raises(ValueError, match=rf"`{name}` must hold L2-normalized rows"):
        call(raw)


def test_unit_rows_pass_the_check_in_float64_and_masked_queue_rows_are_skipped():
    queue = np.concatenate([QUEUE, np.zeros((2, 8), "float32")])  # Two rows never written.
    mask = np.array([1] * 6 + [0, 0])
    value = losses.moco_loss(Q.astype("float64"), K.astype("float64"), queue, mask)
    assert np.all(np.isfinite(ops.convert_to_numpy(value)))


def test_predictive_losses_take_one_order():
    """(predictions, targets) for both: for two views BYOL's 2 - 2 cos summed over the two
    ordered pairs is 4 + 4 x SimSiam's mean negative cosine, and only `targets` is cut."""
    p = RNG.standard_normal((5, 2, 6)).astype("float32")
    z = RNG.standard_normal((5, 2, 6)).astype("float32")
    byol = ops.convert_to_numpy(losses.byol_loss(p, z))
    simsiam = ops.convert_to_numpy(losses.simsiam_loss(p, z))
    assert_close(byol, 4.0 + 4.0 * simsiam, terms=2 * 6, magnitude=4.0)
    keras_form = dict(prediction=p, target=z)
    assert_close(float(losses.BYOLLoss()(None, keras_form)), byol.mean(), terms=5 * 12,
                 magnitude=4.0)
    assert_close(float(losses.SimSiamLoss()(None, keras_form)), simsiam.mean(), terms=5 * 12)
    with pytest.raises(ValueError, match="'prediction' and 'target'"):
        losses.SimSiamLoss()(z, p)
