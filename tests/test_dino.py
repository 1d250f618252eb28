"""DINO: its loss, center and temperature schedule against float64 NumPy statements
(tests/ssl_reference.py), the weight-normalized last layer, the weight-decay schedule,
the ViT encoder (every crop size, interpolated positions, export), the method's step
(teacher on global crops, center, frozen last layer) and its bad input. The method's
fit / `.keras` round trip / bad batches run in tests/test_method_contract.py, its
1/2/4-replica equality in tests/test_distribute_replicas.py."""

import keras
import numpy as np
import pytest
from keras import ops

from ssl_reference import dino_center_reference, dino_reference
from supcon_tf import encoders, methods
from supcon_tf.encoders.vit import PatchPositions
from supcon_tf.heads import ProjectionHead, WeightNormLinear
from supcon_tf.losses import DINOLoss, dino_loss
from supcon_tf.optimizers import CosineRamp, set_weight_decay_schedule
from _gradient import gradient as _gradient
from tolerance import assert_close

RNG = np.random.default_rng(0)


def _logits(batch, views, k):
    return RNG.standard_normal((batch, views, k)).astype("float32")


# --- The loss ------------------------------------------------------------------------

@pytest.mark.parametrize("views, globals_", [(2, 2), (6, 2), (3, 1)])
def test_dino_loss_matches_reference(views, globals_):
    student, teacher = _logits(8, views, 10), _logits(8, globals_, 10)
    center = RNG.standard_normal(10).astype("float32") * 0.1
    expected = dino_reference(student, teacher, center, 0.1, 0.05)
    got = ops.convert_to_numpy(dino_loss(student, teacher, center, 0.1, 0.05))
    # Logits / 0.05 (x20) through a log-sum-exp over 10 classes, summed over the pairs.
    assert_close(got, expected, terms=20 * 10 * views * globals_, magnitude=10.0)
    # The Loss: the temperature of step 3 of a 0.04 -> 0.06 warmup over 4 steps (0.055).
    loss = DINOLoss(teacher_temperature=0.06, warmup_teacher_temperature=0.04,
                    warmup_teacher_temperature_steps=4)
    value = loss(None, dict(student=student, teacher=teacher, center=center, step=3))
    assert_close(float(value), dino_reference(student, teacher, center, 0.1, 0.055).mean(),
                 terms=20 * 10 * views * globals_ * 8, magnitude=10.0)


def test_dino_loss_hand_value():
    # One teacher view certain of class 0 (tau_t -> sharp), student uniform over 2:
    # H = log 2 for the one pair.
    student = np.zeros((1, 2, 2), "float32")
    teacher = np.array([[[10.0, 0.0]]], "float32")
    got = ops.convert_to_numpy(dino_loss(student, teacher, np.zeros(2, "float32"), 0.1, 0.04))
    assert_close(got, [np.log(2.0)], terms=4)


def test_dino_loss_gradient_reaches_the_student_only():
    student, teacher = _logits(4, 4, 6), _logits(4, 2, 6)
    center, weights = np.zeros(6, "float32"), RNG.random(4).astype("float32")
    g_t = _gradient(lambda t: dino_loss(student, t, center, 0.1, 0.04), teacher, weights)
    np.testing.assert_array_equal(g_t, np.zeros_like(g_t))
    g_s = _gradient(lambda s: dino_loss(s, teacher, center, 0.1, 0.04), student, weights)
    # d/ds_v of mean_{(i, v), v != i} H(q_i, softmax(s_v / tau)) = sum_{i != v} (p_v - q_i)
    # / tau / pairs, in float64.
    s, t = student.astype("float64"), teacher.astype("float64")
    p = np.exp(s / 0.1) / np.exp(s / 0.1).sum(-1, keepdims=True)
    q = np.exp(t / 0.04) / np.exp(t / 0.04).sum(-1, keepdims=True)
    expected = np.zeros(s.shape)
    for v in range(4):
        for i in range(2):
            if i != v:
                expected[:, v] += (p[:, v] - q[:, i]) / 0.1 / 6 * weights[:, None]
    assert np.abs(g_s).max() > 1e-2
    assert_close(g_s, expected, terms=25 * 6 * 6, magnitude=10.0)


def test_center_and_teacher_temperature_schedule():
    loss = DINOLoss(teacher_temperature=0.07, warmup_teacher_temperature=0.04,
                    warmup_teacher_temperature_steps=30, center_momentum=0.9)
    temps = [float(loss.temperature_at(s)) for s in (0, 15, 30, 100)]
    assert_close(temps, [0.04, 0.055, 0.07, 0.07])
    assert float(DINOLoss().temperature_at(0)) == pytest.approx(0.04)
    teacher, center = _logits(5, 2, 7), RNG.standard_normal(7).astype("float32")
    assert_close(ops.convert_to_numpy(loss.next_center(center, teacher)),
                 dino_center_reference(center, teacher, 0.9), terms=10)


@pytest.mark.parametrize("make, match", [
    (lambda: DINOLoss(warmup_teacher_temperature=0.08, teacher_temperature=0.07),
     "warmup_teacher_temperature"),
    (lambda: DINOLoss(teacher_temperature=0.1, warmup_teacher_temperature=0.04),
     "teacher_temperature.*below"),
    (lambda: DINOLoss(teacher_temperature=0.0), "teacher_temperature"),
    (lambda: DINOLoss(student_temperature=-0.1), "student_temperature"),
    (lambda: DINOLoss(warmup_teacher_temperature_steps=-1), "warmup_teacher_temperature_steps"),
    (lambda: DINOLoss(center_momentum=1.5), "center_momentum"),
    (lambda: dino_loss(np.zeros((2, 1, 3), "float32"), np.zeros((2, 1, 3), "float32"),
                       np.zeros(3, "float32")), "at least 2 views"),
    (lambda: dino_loss(np.full((2, 2, 3), np.nan, "float32"), np.zeros((2, 1, 3), "float32"),
                       np.zeros(3, "float32")), "student_logits.*must be finite"),
    (lambda: WeightNormLinear(0), "out_dim"),
])
def test_bad_input_raises(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_loss_serialization_round_trip():
    loss = DINOLoss(teacher_temperature=0.07, warmup_teacher_temperature_steps=3)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is DINOLoss and restored.get_config() == loss.get_config()


# --- The last layer and the weight-decay schedule ------------------------------------

def test_weight_norm_last_layer_value_fixed_norm_and_gate():
    layer = WeightNormLinear(5)
    layer.build((None, 4))
    assert [w.name for w in layer.trainable_weights] == ["direction"]  # The norm is fixed.
    x = RNG.standard_normal((3, 4)).astype("float32")
    v = ops.convert_to_numpy(layer.direction).astype("float64")
    expected = x @ (v / np.linalg.norm(v, axis=0, keepdims=True))
    assert_close(ops.convert_to_numpy(layer(x)), expected, terms=4)
    gain = layer.non_trainable_weights
    for gate in (0.0, 1.0):  # Gate 0 (a frozen last layer): no gradient at all.
        g = _gradient(lambda d: layer.stateless_call([d], gain, x, gate=gate)[0],
                      v.astype("float32"), RNG.random((3, 5)).astype("float32"))
        assert (np.abs(g).max() > 1e-3) == bool(gate)
    trained = WeightNormLinear(5, norm_last_layer=False)
    trained.build((None, 4))
    assert len(trained.trainable_weights) == 2
    restored = WeightNormLinear.from_config(trained.get_config())
    assert restored.out_dim == 5 and not restored.norm_last_layer


def test_weight_decay_schedule_follows_the_cosine():
    ramp = CosineRamp(0.04, 0.4, total_steps=4)
    assert_close([float(ramp(s)) for s in (0, 2, 4, 9)], [0.04, 0.22, 0.4, 0.4])
    w = keras.Variable(np.full((3,), 2.0, "float32"))
    opt = keras.optimizers.AdamW(learning_rate=0.5, weight_decay=0.04)
    set_weight_decay_schedule(opt, ramp)
    set_weight_decay_schedule(opt, ramp)  # Again: replaces, never wraps twice.
    expected = 2.0
    for step in range(3):  # Zero gradients: AdamW moves w by its weight decay alone.
        opt.apply_gradients([(ops.zeros((3,)), w)])
        expected *= 1.0 - 0.5 * float(ramp(step))
    assert_close(ops.convert_to_numpy(w), [expected] * 3, terms=3)
    assert opt.get_config()["weight_decay"] == 0.04
    with pytest.raises(ValueError, match="weight_decay"):
        set_weight_decay_schedule(keras.optimizers.Adam(), ramp)
    with pytest.raises(ValueError, match="total_steps"):
        CosineRamp(0.04, 0.4)(0)


# --- The ViT encoder ----------------------------------------------------------------

def _vit(**kwargs):
    kwargs = dict(dict(input_shape=(None, None, 1), patch_size=2, image_size=(8, 8), dim=8,
                       depth=1, num_heads=2), **kwargs)
    return encoders.get("vit_tiny", **kwargs)


def test_vit_takes_every_crop_size_and_outputs_the_cls_token():
    model = _vit()
    big, small = RNG.random((2, 8, 8, 1)), RNG.random((2, 4, 4, 1))
    assert tuple(model(big.astype("float32")).shape) == (2, 8)
    assert tuple(model(small.astype("float32")).shape) == (2, 8)
    assert model.count_params() > 0 and model.output.shape[-1] == 8
    # ViT-S/16 at 224: 21,665,664 weights (timm's and DINO's count), 12 blocks of
    # 1,774,464 each; one block built here.
    small_vit = encoders.get("vit_small", input_shape=(224, 224, 3), depth=1)
    assert small_vit.output.shape[-1] == 384
    assert small_vit.count_params() == 21_665_664 - 11 * 1_774_464


def test_vit_position_embeddings_are_interpolated_to_the_crop_grid():
    layer = PatchPositions((8, 8))
    layer.build((None, 8, 8, 1))
    ramp = np.arange(8, dtype="float32")[:, None, None] * np.ones((1, 8, 1), "float32")
    layer.position.assign(np.concatenate([np.zeros((1, 1, 1)), ramp.reshape(1, 64, 1)], 1))
    layer.cls_token.assign(np.full((1, 1, 1), 3.0))
    same = ops.convert_to_numpy(layer(np.zeros((1, 8, 8, 1), "float32")))
    np.testing.assert_array_equal(same[0, 1:, 0], ramp.ravel())  # Native grid: as learned.
    assert same[0, 0, 0] == 3.0  # CLS token + its position.
    half = ops.convert_to_numpy(layer(np.zeros((1, 4, 4, 1), "float32")))[0, 1:, 0]
    half = half.reshape(4, 4)
    # Bicubic (half-pixel centers) reproduces a linear ramp away from the border: rows 1
    # and 2 of the 4x4 grid sample rows 2.5 and 4.5 of the 8x8 one.
    assert_close(half[1:3], [[2.5] * 4, [4.5] * 4], terms=16)


def test_vit_refuses_crops_its_patch_size_does_not_divide():
    model = _vit(patch_size=4)
    with pytest.raises(ValueError, match=r"`patch_size` \(4\) must divide"):
        model(np.zeros((1, 6, 6, 1), "float32"))
    with pytest.raises(ValueError, match="patch_size"):
        _vit(input_shape=(10, 10, 1), patch_size=4, image_size=None)
    with pytest.raises(ValueError, match="num_heads"):
        _vit(dim=9, num_heads=2)


def test_vit_keras_round_trip_and_saved_model(tmp_path):
    model = _vit(input_shape=(8, 8, 1), image_size=None)
    images = RNG.random((3, 8, 8, 1)).astype("float32")
    expected = ops.convert_to_numpy(model(images))
    model.save(tmp_path / "vit.keras")
    restored = keras.saving.load_model(tmp_path / "vit.keras")
    np.testing.assert_array_equal(ops.convert_to_numpy(restored(images)), expected)
    if keras.backend.backend() != "tensorflow":
        return  # SavedModel export runs on TensorFlow.
    from supcon_tf import export

    path = export.export_saved_model(tmp_path / "export", encoder=model, image_shape=(8, 8, 1))
    loaded = export.load_saved_model(path)
    # 2 attention + 2 MLP matmuls of width 8 over 17 tokens.
    assert_close(loaded(images).numpy(), expected, terms=17 * 8 * 4)


# --- The method ---------------------------------------------------------------------

def _dino(**kwargs):
    keras.utils.set_random_seed(0)
    head = ProjectionHead((8,), 4, use_batch_norm=False, activation="gelu")
    return methods.DINO(_vit(), head, out_dim=6, total_steps=10, **kwargs)


def _multicrop(batch=4):
    return (RNG.random((batch, 2, 8, 8, 1)).astype("float32"),
            RNG.random((batch, 3, 4, 4, 1)).astype("float32"))


def test_step_centres_on_the_teacher_global_crops_and_freezes_the_last_layer():
    model = _dino(freeze_last_layer_steps=1)
    model.compile(optimizer=keras.optimizers.SGD(0.5), run_eagerly=True)  # No tracing.
    views = _multicrop()
    before = model(views)  # The teacher starts as a copy of the student.
    assert tuple(before["logits"].shape) == (4, 5, 6)
    assert tuple(before["teacher_logits"].shape) == (4, 2, 6)
    assert_close(ops.convert_to_numpy(before["teacher_logits"]),
                 ops.convert_to_numpy(before["logits"][:, :2]), terms=64)
    direction = ops.convert_to_numpy(model.last_layer.direction)
    encoder = [ops.convert_to_numpy(w) for w in model.encoder.trainable_weights]
    model.train_on_batch(views)
    # Step 0: the last layer is frozen, the rest trains; the center takes the EMA of the
    # teacher's global-crop outputs (from 0, momentum 0.9).
    np.testing.assert_array_equal(ops.convert_to_numpy(model.last_layer.direction), direction)
    assert any(not np.array_equal(ops.convert_to_numpy(w), e)
               for w, e in zip(model.encoder.trainable_weights, encoder))
    assert_close(ops.convert_to_numpy(model.center),
                 dino_center_reference(np.zeros(6), before["teacher_logits"], 0.9), terms=64)
    model.train_on_batch(views)  # Step 1: the last layer trains.
    assert not np.array_equal(ops.convert_to_numpy(model.last_layer.direction), direction)
    assert int(model.teacher.step) == 2


def test_gradient_accumulation_is_refused():
    model = _dino()
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        model.compile(optimizer=keras.optimizers.SGD(0.1, gradient_accumulation_steps=2))


def test_weight_decay_end_schedules_the_optimizer_and_needs_a_decay():
    model = _dino(weight_decay_end=0.4)
    model(_multicrop())
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.04))
    assert model.weight_decay_schedule.get_config() == dict(start=0.04, end=0.4,
                                                            total_steps=10)
    # Biases and LayerNorm parameters take no weight decay (the official groups).
    assert model.optimizer._use_weight_decay(model.last_layer.direction)
    norms = [v for v in model.encoder.trainable_weights if v.name in ("gamma", "beta")]
    assert norms and not any(model.optimizer._use_weight_decay(v) for v in norms)
    with pytest.raises(ValueError, match="weight_decay"):
        _dino(weight_decay_end=0.4).compile(optimizer=keras.optimizers.Adam(1e-3))
