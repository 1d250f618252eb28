"""MoCo v2, supervised MoCo and BYOL: one-to-three steps against float64 NumPy statements
of the papers' pseudo-code (tests/momentum_reference.py), the queue, the teacher,
argument errors and the `.keras` round trip. Backend-agnostic (also run on JAX)."""

import keras
import numpy as np
import pytest
from keras import ops

from momentum_reference import byol_reference, moco_reference
from supcon_tf import losses, methods
from supcon_tf.heads import ProjectionHead
from supcon_tf.methods.teacher import Teacher, momentum_at
from tolerance import assert_close

BATCH, QUEUE, LR, TEMPERATURE, STEPS = 4, 6, 0.5, 0.2, 3


def tiny_parts(normalize=True):
    encoder = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(3, activation="tanh")])
    head = ProjectionHead(hidden_dims=(3,), output_dim=4, use_batch_norm=False,
                          normalize=normalize)
    return encoder, head


def randomize_biases(model, seed=0):
    """Nonzero biases: zero-initialized ones can leave a tiny ReLU head all zero."""
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables:
        if v.name == "bias":
            v.assign(rng.uniform(0.1, 0.5, size=v.shape).astype("float32"))


def steps_data(seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(BATCH, 2, 2, 2, 1)).astype("float32"),
             rng.integers(0, 2, size=BATCH).astype("int32")) for _ in range(STEPS)]


def numpy_list(variables):
    return [ops.convert_to_numpy(v).astype("float64") for v in variables]


def train(model, data):
    model.compile(optimizer=keras.optimizers.SGD(LR))
    online = model.encoder.trainable_variables + model.head.trainable_variables
    if model.predictor is not None:
        online = online + model.predictor.trainable_variables
    before = numpy_list(online)
    step_losses, grads = [], None
    for x, y in data:
        step_losses.append(float(model.train_on_batch(x, y)))
        if grads is None:
            grads = [(b - a) / LR for b, a in zip(before, numpy_list(online))]
    return step_losses, grads, numpy_list(online), before


def check_lists(actual, expected, what, terms, magnitude=None):
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape, (what, i)
        assert_close(a, e, terms=terms, magnitude=magnitude, err_msg=f"{what} {i}")


@pytest.mark.parametrize("name", ["moco", "supcon_moco"])
def test_moco_steps_match_algorithm_1(name):
    keras.utils.set_random_seed(0)
    encoder, head = tiny_parts()
    model = methods.get(name, encoder=encoder, head=head, queue_size=QUEUE, momentum=0.9,
                        loss=(losses.MoCoLoss if name == "moco" else losses.QueueSupConLoss)(
                            temperature=TEMPERATURE))
    model(ops.zeros((1, 2, 2, 2, 1)))
    randomize_biases(model)
    data = steps_data()
    step_losses, grads, online, initial = train(model, data)
    ref = moco_reference(initial, data, queue_size=QUEUE, momentum=0.9,
                         temperature=TEMPERATURE, lr=LR, supervised=name == "supcon_moco")
    terms = BATCH * (QUEUE + BATCH) * 4  # a batch mean of log-sum-exps of dot products
    assert_close(step_losses, ref["losses"], terms=terms, magnitude=1 / TEMPERATURE)
    # (before - after) / LR: rounding of the weights, divided by LR, plus the gradient's.
    scale = max(1 / TEMPERATURE, max(np.abs(w).max() for w in initial) / LR)
    check_lists(grads, ref["grads"], "gradient", terms, scale)
    check_lists(online, ref["online"], "online weight", STEPS * terms, scale)
    check_lists(numpy_list(sum(model.teacher.copies, [])), ref["teacher"], "teacher weight",
                STEPS * terms, scale)
    # 3 x 4 keys through 6 rows: the last enqueue wrapped around.
    queue = model.queue
    assert int(ops.convert_to_numpy(queue.pointer)) == ref["queue"].pointer == 0
    assert int(ops.convert_to_numpy(queue.count)) == QUEUE
    assert_close(ops.convert_to_numpy(queue.values), ref["queue"].values,
                 terms=STEPS * terms, magnitude=scale)
    if name == "supcon_moco":
        np.testing.assert_array_equal(ops.convert_to_numpy(queue.labels), ref["queue"].labels)
    assert int(ops.convert_to_numpy(model.teacher.step)) == STEPS
    # Not trivial: the teacher lags the online weights; the queue differs from the last keys.
    assert max(np.abs(t - o).max() for t, o in zip(ref["teacher"], ref["online"])) > 1e-3


def test_byol_steps_match_the_paper():
    keras.utils.set_random_seed(0)
    encoder, head = tiny_parts(normalize=False)
    model = methods.BYOL(encoder, head, momentum=0.9, total_steps=STEPS,
                         predictor_hidden_dims=(5,), predictor_batch_norm=False)
    model(ops.zeros((1, 2, 2, 2, 1)))
    randomize_biases(model)
    data = steps_data(1)
    step_losses, grads, online, initial = train(model, data)
    ref = byol_reference(initial[:6], initial[6:], data, momentum=0.9, total_steps=STEPS,
                         lr=LR)
    terms = BATCH * 2 * 5
    scale = max(1.0, max(np.abs(w).max() for w in initial) / LR)
    assert_close(step_losses, ref["losses"], terms=terms)
    check_lists(grads, ref["grads"], "gradient", terms, scale)
    check_lists(online, ref["online"], "online weight", STEPS * terms, scale)
    check_lists(numpy_list(sum(model.teacher.copies, [])), ref["teacher"], "teacher weight",
                STEPS * terms, scale)
    assert max(np.abs(t - o).max() for t, o in zip(ref["teacher"], ref["online"])) > 1e-3


def test_loss_functions_hand_values():
    t = 0.5
    q = np.eye(3)[:2]  # two queries, each its own key; queue: the third axis, twice.
    queue = np.stack([np.eye(3)[2]] * 2)
    got = ops.convert_to_numpy(losses.moco_loss(q, q, queue, temperature=t))
    expected = -np.log(np.exp(1 / t) / (np.exp(1 / t) + 2))  # orthogonal: exp(0) each
    assert_close(got, [expected] * 2, terms=3)
    masked = ops.convert_to_numpy(losses.moco_loss(q, q, queue, np.array([1.0, 0.0]),
                                                   temperature=t))
    assert_close(masked, [-np.log(np.exp(1 / t) / (np.exp(1 / t) + 1))] * 2, terms=2)
    # SupCon over batch + queue: query 0 (class 0) with queue rows of class 0 and 1.
    sup = ops.convert_to_numpy(losses.queue_supcon_loss(
        q, q, np.array([0, 1]), queue, np.array([0, 1]), temperature=t,
        scale_by_temperature=False))
    # Contrasts of query 0: its key (1/t), key 1 (0), queue 0 (0, positive), queue 1 (0).
    log_den = np.log(np.exp(1 / t) + 3)
    assert_close(sup, [-((1 / t - log_den) + (0 - log_den)) / 2] * 2, terms=4)
    p = np.array([[[1.0, 0.0], [0.0, 2.0]]])
    got = ops.convert_to_numpy(losses.byol_loss(p, p))  # orthogonal views: 2 + 2
    assert_close(got, [4.0], terms=2)
    assert_close(ops.convert_to_numpy(losses.byol_loss(p, p[:, ::-1])), [0.0], terms=2)


def test_momentum_schedule():
    assert_close([float(momentum_at(s, 0.9, "cosine", 4)) for s in (0, 2, 4, 9)],
                 [0.9, 0.95, 1.0, 1.0], terms=2)
    assert float(momentum_at(7, 0.99)) == pytest.approx(0.99, abs=1e-7)


def test_errors():
    encoder, head = tiny_parts()
    with pytest.raises(ValueError, match=r"`momentum` must be a number in \[0, 1\]; "
                                         r"received momentum=1.5"):
        methods.MoCo(encoder, head, momentum=1.5)
    with pytest.raises(ValueError, match="momentum=-0.1"):
        Teacher(momentum=-0.1)
    with pytest.raises(ValueError, match="`total_steps` must be > 0; received total_steps=0"):
        methods.BYOL(encoder, head, total_steps=0)  # None: fit sets it (tests/test_input_rule).
    with pytest.raises(ValueError, match="`temperature` must be > 0; received temperature=0.0"):
        losses.MoCoLoss(temperature=0.0)
    with pytest.raises(ValueError, match="temperature=-1"):
        losses.QueueSupConLoss(temperature=-1)
    with pytest.raises(ValueError, match="queue_size"):
        methods.MoCo(encoder, head, queue_size=0)
    x, y = steps_data()[0]
    model = methods.MoCo(encoder, head, queue_size=BATCH - 1)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"`size` of the queue \(3\) must be at least the "
                                         r"global batch size; received a global batch of 4"):
        model.train_on_batch(x, y)
    model = methods.MoCo(*tiny_parts(), queue_size=QUEUE)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="at least 2 view"):
        model.train_on_batch(x[:, :1], y)
    model = methods.SupConMoCo(*tiny_parts(), queue_size=QUEUE)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="SupConMoCo needs labels: batches must be"):
        model.train_on_batch(x)


def test_evaluation_leaves_teacher_and_queue_alone():
    model = methods.MoCo(*tiny_parts(), queue_size=QUEUE)
    model.compile(optimizer="sgd")
    x, y = steps_data()[0]
    model.train_on_batch(x, y)
    state = numpy_list(model.non_trainable_variables)
    model.test_on_batch(x, y)
    for a, b in zip(state, numpy_list(model.non_trainable_variables)):
        np.testing.assert_array_equal(a, b)
    assert model.predict(x[:, 0], verbose=0).shape == (BATCH, 3)
