"""make_pretrain_dataset / make_eval_dataset: shapes, dtypes, determinism, sharding, bad input,
and a few fit steps with the views drawn on the host and on the device."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from supcon_tf import data, encoders, methods, views
from supcon_tf.heads import ProjectionHead
from tolerance import assert_close, is_close

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)
LABELS = np.arange(40) % 4


def arrays():
    return data.from_arrays(IMAGES, LABELS)[0]


def first(ds):
    x, y = next(iter(ds))
    return x.numpy(), y.numpy()


@pytest.mark.parametrize("num_views", [1, 3])
def test_host_batches_of_views(num_views):
    ds = data.make_pretrain_dataset(arrays(), batch_size=16, num_views=num_views,
                                    augmenter=views.get("digits", seed=0), seed=0)
    x, y = first(ds)
    assert x.shape == (16, num_views, 8, 8, 1) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1 and y.dtype == np.int32 and y.shape == (16,)
    assert ds.element_spec[0].shape == (16, num_views, 8, 8, 1)          # drop_remainder
    if num_views > 1:
        assert not is_close(x[:, 0], x[:, 1], dtype="float32", terms=64)  # views differ


def test_device_batches_are_uint8_images_and_repeat():
    ds = data.make_pretrain_dataset(arrays(), batch_size=16, augment_on="device",
                                    shuffle_buffer=0)
    batches = [b for b in ds.take(5)]                            # 5 x 16 > 40: repeats
    x, y = batches[0]
    assert x.dtype == tf.uint8 and tuple(x.shape) == (16, 8, 8, 1) and y.dtype == tf.int32
    np.testing.assert_array_equal(x.numpy(), IMAGES[:16])        # no shuffle: dataset order
    once = data.make_pretrain_dataset(arrays(), batch_size=16, augment_on="device",
                                      repeat=False, drop_remainder=False)
    assert [int(b[1].shape[0]) for b in once] == [16, 16, 8]


def test_deterministic_with_seed_gives_the_same_batches():
    def run():
        ds = data.make_pretrain_dataset(arrays(), batch_size=8, augmenter=views.get(
            "digits", seed=1), seed=7, deterministic=True)
        return [first(ds.skip(i)) for i in (0,)][0]

    (x1, y1), (x2, y2) = run(), run()
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_input_context_splits_the_global_batch_and_shards():
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                     num_replicas_in_sync=2)
    ds = data.make_pretrain_dataset(arrays(), batch_size=16, augment_on="device",
                                    shuffle_buffer=0, input_context=ctx, repeat=False)
    x, _ = first(ds)
    assert x.shape == (8, 8, 8, 1)
    np.testing.assert_array_equal(x, IMAGES[1::2][:8])


def test_varying_sizes_are_augmented_per_image_or_need_resize():
    ragged = tf.data.Dataset.from_generator(
        lambda: ((RNG.integers(0, 256, (8 + i % 3, 9, 3), dtype=np.uint8), i) for i in range(6)),
        output_signature=(tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((), tf.int64)))
    host = data.make_pretrain_dataset(ragged, batch_size=3, augmenter=views.get(
        "cifar", image_size=(6, 6)), shuffle_buffer=0)
    assert first(host)[0].shape == (3, 2, 6, 6, 3)
    with pytest.raises(ValueError, match=r"resize=\(H, W\)"):
        data.make_pretrain_dataset(ragged, batch_size=3, augment_on="device")
    device = data.make_pretrain_dataset(ragged, batch_size=3, augment_on="device", resize=(7, 7))
    x, _ = first(device)
    assert x.shape == (3, 7, 7, 3) and x.dtype == np.uint8


@pytest.mark.parametrize("kwargs,match", [
    ({"num_views": 0, "augmenter": views.Compose([])}, "num_views"),
    ({"augment_on": "gpu"}, "augment_on"),
    ({"augment_on": "host"}, "augmenter"),
    ({"batch_size": 0, "augment_on": "device"}, "batch_size"),
])
def test_pretrain_bad_arguments(kwargs, match):
    kwargs = {"batch_size": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        data.make_pretrain_dataset(arrays(), **kwargs)


def test_eval_dataset_keeps_order_and_scales():
    x, y = first(data.make_eval_dataset(arrays(), batch_size=32))
    assert_close(x, IMAGES[:32] / 255.0, dtype="float32", terms=1)  # one float32 division
    np.testing.assert_array_equal(y, LABELS[:32])
    x, _ = first(data.make_eval_dataset(arrays(), 32, transform=views.get("eval", image_size=(4, 4))))
    # Bilinear: 4 taps, weights from coordinates of up to 8 pixels.
    assert_close(x, tf.image.resize(IMAGES[:32] / 255.0, (4, 4)).numpy(), dtype="float32",
                 terms=4 + 8)


@pytest.mark.parametrize("augment_on", ["host", "device"])
def test_supcon_fits_on_digits_with_views_from_either_place(augment_on):
    ds, info = data.load("digits")
    aug = views.get("digits", seed=0)
    train = data.make_pretrain_dataset(ds, batch_size=64, augmenter=aug, augment_on=augment_on,
                                       seed=0)
    encoder = encoders.get("small_cnn", input_shape=info.image_shape, widths=(8, 16), dim=16)
    model = methods.SupCon(encoder, ProjectionHead(output_dim=8),
                           augmenter=views.MultiView(aug, 2) if augment_on == "device" else None)
    # Built on views first: JAX (and tf.distribute) collect the variables before the step,
    # and a model built on plain images would not have built its head yet.
    model(np.zeros((2, 2, *info.image_shape), "float32"))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    history = model.fit(train, steps_per_epoch=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
