"""SupCon / SimCLR models, the frozen linear stage and the cross-entropy baseline via fit."""

import keras
import numpy as np
import pytest
from keras import ops

from loss_reference import loss_terms, supcon_reference
from supcon_tf import encoders, methods
from supcon_tf.heads import ProjectionHead
from supcon_tf.losses import SimCLRLoss, SupConLoss
from tolerance import assert_close

# One sample's float32 forward pass through tiny_encoder and a head: conv2's 3x3x8
# products, a pool over 4x4, dense layers of at most 16 inputs (tests/tolerance.py terms).
FORWARD_TERMS = 3 * 3 * 8 + 4 * 4 + 3 * 16


@pytest.fixture(autouse=True)
def _seeded():
    """Each test starts from the same random state: weight initializations are repeatable."""
    keras.utils.set_random_seed(0)


def tiny_encoder(channels=1, size=8):
    return encoders.get("small_cnn", input_shape=(size, size, channels), widths=(8, 16), dim=16)


def class_data(n=128, classes=4, size=8, views=2, seed=0):
    """Images whose class shows as a bright quadrant; views add noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    base = rng.random((n, size, size, 1)).astype("float32") * 0.3
    half = size // 2
    for c in range(classes):
        r, q = divmod(c, 2)
        base[labels == c, r * half:(r + 1) * half, q * half:(q + 1) * half] += 0.7
    noisy = np.stack([base + 0.1 * rng.standard_normal(base.shape).astype("float32")
                      for _ in range(views)], axis=1)
    return noisy, base, labels


def test_call_on_views_and_images():
    model = methods.SupCon(tiny_encoder(), ProjectionHead(output_dim=8))
    views, images, _ = class_data(n=6)
    out = model(views, training=False)
    assert tuple(out["representation"].shape) == (6, 2, 16)
    assert tuple(out["projection"].shape) == (6, 2, 8)
    rep = ops.convert_to_numpy(model(images))
    assert_close(ops.convert_to_numpy(out["representation"][:, 0]),
                 ops.convert_to_numpy(model(views[:, 0])), dtype="float32", terms=FORWARD_TERMS)
    assert rep.shape == (6, 16)


def test_train_step_loss_equals_loss_of_outputs():
    model = methods.SupCon(tiny_encoder(), ProjectionHead(output_dim=8),
                           loss=SupConLoss(temperature=0.5))
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    views, _, labels = class_data(n=8)
    logs = model.train_on_batch(views, labels, return_dict=True)
    feats = ops.convert_to_numpy(model(views, training=False)["projection"])
    # lr=0 leaves weights; BN in training mode uses batch statistics, so compare with test_step
    test_logs = model.test_on_batch(views, labels, return_dict=True)
    # float32 features computed again outside the step: their forward errors reach the loss.
    assert_close(test_logs["loss"], supcon_reference(feats, labels, temperature=0.5).mean(),
                 dtype="float32", terms=loss_terms(8, 2, 8) + FORWARD_TERMS)
    assert np.isfinite(logs["loss"])


def test_simclr_ignores_labels_and_needs_two_views():
    model = methods.SimCLR(tiny_encoder(), ProjectionHead(output_dim=8))
    model.compile(optimizer="sgd")
    views, _, labels = class_data(n=8)
    with_labels = model.test_on_batch(views, labels, return_dict=True)["loss"]
    without = model.test_on_batch(views, return_dict=True)["loss"]
    assert_close(with_labels, without, dtype="float32", terms=loss_terms(8, 2, 8))
    with pytest.raises(ValueError, match="at least 2 view"):
        model.train_on_batch(views[:, :1])


def test_train_step_rejects_images_of_wrong_rank():
    model = methods.SupCon(tiny_encoder(), ProjectionHead(output_dim=8))
    model.compile(optimizer="sgd")
    _, images, labels = class_data(n=8)
    with pytest.raises(ValueError, match="rank 5"):
        model.train_on_batch(images, labels)


def test_unknown_method_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown method 'supcom'.*supcon.*simclr.*supcon"):
        methods.get("supcom", encoder=tiny_encoder())


def test_regularization_losses_are_added():
    inputs = keras.Input((8, 8, 1))
    dense = keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2(1.0))
    encoder = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    model = methods.SupCon(encoder, ProjectionHead(output_dim=4))
    model.compile(optimizer="sgd")
    views, _, labels = class_data(n=8)
    contrastive = ops.convert_to_numpy(
        model.method_loss(labels, model(views, training=False)["projection"]))
    l2 = float(np.sum(ops.convert_to_numpy(dense.kernel) ** 2))
    logs = model.test_on_batch(views, labels, return_dict=True)
    # The loss (8 x 2 views, dim 4) plus a sum of 64 x 4 squares, float32.
    assert_close(logs["loss"], contrastive + l2, dtype="float32",
                 terms=loss_terms(8, 2, 4) + FORWARD_TERMS + 64 * 4)


def test_learning_supcon_then_frozen_linear_stage():
    views, images, labels = class_data(n=256, seed=1)
    encoder = tiny_encoder()
    model = methods.SupCon(encoder, ProjectionHead(output_dim=16),
                           loss=SupConLoss(temperature=0.1))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(views, labels, batch_size=64, epochs=6, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

    before = [w.copy() for w in encoder.get_weights()]
    classifier = methods.LinearClassifier(encoder, num_classes=4)
    classifier.compile(optimizer=keras.optimizers.Adam(0.1))
    history = classifier.fit(images, labels, batch_size=64, epochs=10, verbose=0)
    assert set(history.history) >= {"loss", "top1", "top5"}
    _, test_images, test_labels = class_data(n=128, seed=7)
    held_out = classifier.evaluate(test_images, test_labels, verbose=0, return_dict=True)
    assert held_out["top1"] > 0.9
    after = encoder.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # BN stats included
    assert not classifier.encoder.trainable
    assert len(classifier.trainable_weights) == 2  # the linear head's kernel and bias
    logits = classifier.predict(images[:4], verbose=0)
    assert logits.shape == (4, 4)
    with pytest.raises(ValueError, match="rank 4"):
        classifier(views)


def test_cross_entropy_baseline_trains_encoder():
    _, images, labels = class_data(n=128, seed=2)
    encoder = tiny_encoder()
    before = [w.copy() for w in encoder.get_weights()]
    model = methods.CrossEntropyClassifier(encoder, num_classes=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(images, labels, batch_size=32, epochs=6, verbose=0)
    assert encoder.trainable
    assert any(not np.array_equal(a, b) for a, b in zip(before, encoder.get_weights()))
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["top1"][-1] > 0.8


@pytest.mark.parametrize("cls,loss", [(methods.SupCon, SupConLoss(temperature=0.2)),
                                      (methods.SimCLR, SimCLRLoss(temperature=0.3))])
def test_keras_file_round_trip(tmp_path, cls, loss):
    views, images, labels = class_data(n=16)
    model = cls(tiny_encoder(), ProjectionHead(hidden_dims=[8], output_dim=4), loss=loss)
    model.compile(optimizer="adam")
    model.fit(views, labels, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored) is cls
    assert restored.method_loss.get_config() == loss.get_config()
    assert_close(restored.predict(images, verbose=0), model.predict(images, verbose=0),
                 dtype="float32", terms=FORWARD_TERMS)
    classifier = methods.LinearClassifier(restored.encoder, 4)
    classifier(images[:2])
    path2 = str(tmp_path / "linear.keras")
    classifier.save(path2)
    restored2 = keras.models.load_model(path2)
    assert not restored2.encoder.trainable
    assert_close(restored2.predict(images, verbose=0), classifier.predict(images, verbose=0),
                 dtype="float32", terms=FORWARD_TERMS)


def test_fit_on_images_with_on_device_augmenter_needs_no_warm_up():
    from supcon_tf import views

    _, images, labels = class_data(n=32)
    augmenter = views.MultiView(views.get("digits", seed=0), num_views=2)
    model = methods.SupCon(tiny_encoder(), ProjectionHead(output_dim=8), augmenter=augmenter)
    model.compile(optimizer="adam")
    history = model.fit(np.clip(images, 0, 1), labels, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.head.built
    assert tuple(model.predict(images[:3], verbose=0).shape) == (3, 16)  # no augmentation
