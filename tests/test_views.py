"""Augmenters: pinned against tf.image / PIL / NumPy references, ranges, seeds, serialization."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from supcon_tf import views
from supcon_tf.views import autoaugment as aa
from supcon_tf.views import color
from supcon_tf.views.crop import crop_resize
from tolerance import assert_close, bound, is_close

B = keras.src.backend  # The active backend module, what `self.backend` is outside tf.data.
RNG = np.random.default_rng(0)
RGB = (RNG.random((6, 20, 20, 3)) * 255).astype("uint8")
GRAY = (RNG.random((4, 8, 8, 1)) * 255).astype("uint8")


def np_(x):
    return keras.ops.convert_to_numpy(x)


# tests/tolerance.py terms for float32 pixels in [0, 1] (magnitude 1): a bilinear sample is
# 4 taps whose weights come from coordinates of up to the image's side in pixels (a
# coordinate's rounding, side x eps, times a pixel step of at most 1).
def bilinear_terms(side):
    return 4 + side


# A whole policy (crop-resize, colour ops, blur) chains a few dozen such operations.
POLICY_TERMS = 64


# --- the primitive ops against references --------------------------------------------------

def test_crop_resize_whole_box_equals_tf_image_resize():
    x = RGB.astype("float32") / 255
    n = len(x)
    zeros, full = np.zeros(n, "float32"), np.full(n, 20.0, "float32")
    for size in ((20, 20), (13, 7), (32, 40)):
        got = np_(crop_resize(B, keras.ops.convert_to_tensor(x), zeros, zeros, full, full, size))
        want = tf.image.resize(x, size, method="bilinear", antialias=False).numpy()
        assert_close(got, want, dtype="float32", terms=bilinear_terms(max(size)))


def test_crop_resize_box_equals_resize_of_the_integer_crop():
    x = RGB.astype("float32") / 255
    n = len(x)
    y0, x0, h, w = (np.full(n, v, "float32") for v in (3, 5, 10, 8))
    got = np_(crop_resize(B, keras.ops.convert_to_tensor(x), y0, x0, h, w, (10, 8)))
    assert_close(got, x[:, 3:13, 5:13], dtype="float32", terms=bilinear_terms(20))
    got = np_(crop_resize(B, keras.ops.convert_to_tensor(x), y0, x0, h, w, (5, 16)))
    want = tf.image.resize(x[:, 3:13, 5:13], (5, 16), antialias=False).numpy()
    assert_close(got, want, dtype="float32", terms=bilinear_terms(20))


@pytest.mark.parametrize("op,ref,factor", [
    (lambda x, f: color.adjust_brightness(B, x, f, "additive"), tf.image.adjust_brightness, 0.2),
    (lambda x, f: color.adjust_contrast(B, x, f), tf.image.adjust_contrast, 1.6),
    (lambda x, f: color.adjust_saturation(B, x, f), tf.image.adjust_saturation, 0.4),
    (lambda x, f: color.adjust_hue(B, x, f), tf.image.adjust_hue, -0.15),
])
def test_colour_ops_match_tf_image(op, ref, factor):
    # SimCLR calls these tf.image ops (then clips to [0, 1]).
    x = RGB.astype("float32") / 255
    got = np_(op(keras.ops.convert_to_tensor(x), keras.ops.full((len(x),), factor)))
    want = np.clip(ref(x, factor).numpy(), 0, 1)
    # An HSV round trip (hue, saturation) is ~16 elementwise float32 ops on each side.
    assert_close(got, want, dtype="float32", terms=2 * 16)


def test_multiplicative_brightness_and_grayscale():
    x = RGB.astype("float32") / 255
    got = np_(color.adjust_brightness(B, keras.ops.convert_to_tensor(x), keras.ops.full((6,), 1.5),
                                      "multiplicative"))
    assert_close(got, np.clip(x * 1.5, 0, 1), dtype="float32", terms=1)
    gray = np_(color.to_grayscale(B, keras.ops.convert_to_tensor(x)))
    assert_close(gray, np.repeat(tf.image.rgb_to_grayscale(x).numpy(), 3, -1),
                 dtype="float32", terms=3)  # a weighted sum of 3 channels


def test_gaussian_blur_matches_numpy_separable_convolution():
    layer = views.GaussianBlur(p=1.0, sigma_range=(1.3, 1.3), kernel_fraction=0.25, seed=0)
    x = RGB.astype("float32") / 255                              # side 20 -> radius 2
    got = np_(layer(x))
    t = np.arange(-2, 3)
    k = np.exp(-t ** 2 / (2 * 1.3 ** 2))
    k /= k.sum()
    pad = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    rows = sum(k[i] * pad[:, i:i + 20] for i in range(5))
    want = sum(k[i] * rows[:, :, i:i + 20] for i in range(5))
    # float32: 5 + 5 taps and the kernel's normalization over 5 weights.
    assert_close(got, want, dtype="float32", terms=5 + 5 + 5)


@pytest.mark.parametrize("ours,pil", [
    (aa.equalize, ImageOps.equalize),
    (aa.autocontrast, ImageOps.autocontrast),
    (lambda b, x: aa.blend(b, aa.sharpness_degenerate(b, x), x, keras.ops.full((6,), 0.0)),
     lambda im: im.filter(__import__("PIL.ImageFilter").ImageFilter.SMOOTH)),
])
def test_autoaugment_ops_match_pil(ours, pil):
    x = RGB.copy()
    x[0] = x[0] // 4 + 60                                         # a low-contrast image
    got = np_(ours(B, keras.ops.convert_to_tensor(x.astype("float32") / 255))) * 255
    want = np.stack([np.asarray(pil(Image.fromarray(im))) for im in x]).astype("float32")
    # Not a float rounding bound: PIL rounds its results to integers (one grey level).
    np.testing.assert_allclose(got, want, atol=1.01)


def test_autoaugment_affine_rotates_a_quarter_turn_and_zero_is_identity():
    x = keras.ops.convert_to_tensor(RGB.astype("float32") / 255)
    zero = keras.ops.zeros((6,))
    assert_close(np_(aa.affine(B, x, zero, zero)), np_(x), dtype="float32",
                 terms=bilinear_terms(20))
    quarter = np_(aa.affine(B, x, keras.ops.full((6,), np.pi / 2), zero))
    turned = [np.rot90(np_(x), k, axes=(1, 2)) for k in (1, 3)]
    assert any(is_close(quarter, t, dtype="float32", terms=bilinear_terms(20)) for t in turned)


# --- every policy: shape, dtype, range, seeds ------------------------------------------------

POLICY_CASES = [("simclr", {"image_size": (16, 16)}), ("cifar", {"image_size": (16, 16)}),
                ("digits", {"image_size": (8, 8)}), ("randaugment", {"image_size": (16, 16)}),
                ("autoaugment", {"image_size": (16, 16)}), ("eval", {"image_size": (12, 10)}),
                ("cpc_patches", {"image_size": (8, 8)}),
                ("yadim", {"image_size": (16, 16), "translate": 2})]


@pytest.mark.parametrize("name,kwargs", POLICY_CASES)
def test_policy_shape_dtype_range_eager_and_in_tf_data(name, kwargs):
    images = GRAY if name == "digits" else RGB
    a = views.get(name, seed=3, **kwargs)
    out = np_(a(images))
    assert out.shape == (len(images), *kwargs["image_size"], images.shape[-1])
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    x = next(iter(tf.data.Dataset.from_tensor_slices(images).batch(3).map(a))).numpy()
    assert x.shape == (3, *kwargs["image_size"], images.shape[-1]) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1


@pytest.mark.parametrize("name", ["simclr", "digits"])
def test_policy_seeds(name):
    images = GRAY if name == "digits" else RGB
    size = (8, 8) if name == "digits" else (16, 16)
    a = views.get(name, seed=3, image_size=size)
    out = np_(a(images))
    np.testing.assert_array_equal(out, np_(views.get(name, seed=3, image_size=size)(images)))
    other_seed = np_(views.get(name, seed=4, image_size=size)(images))
    assert not is_close(out, other_seed, dtype="float32", terms=POLICY_TERMS)
    assert not is_close(out, np_(a(images)), dtype="float32", terms=POLICY_TERMS)  # moves on
    # A uint8 batch and the same batch as floats in [0, 1] give the same views.
    floats = np_(views.get(name, seed=3, image_size=size)(images.astype("float32") / 255))
    assert_close(out, floats, dtype="float32", terms=POLICY_TERMS)


def test_one_image_at_a_time_in_tf_data():
    # Per-image use (images of varying sizes are augmented before batching).
    a = views.get("simclr", image_size=(12, 12), seed=0)
    x = next(iter(tf.data.Dataset.from_tensor_slices(RGB).map(a))).numpy()
    assert x.shape == (12, 12, 3) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1


def test_training_false_is_deterministic_resize():
    a = views.get("simclr", image_size=(10, 10), seed=0)
    out = np_(a(RGB, training=False))
    want = tf.image.resize(RGB.astype("float32") / 255, (10, 10), antialias=False).numpy()
    assert_close(out, want, dtype="float32", terms=bilinear_terms(20))


def test_eval_centre_crop_and_normalize():
    a = views.get("eval", image_size=(10, 10), crop_fraction=0.5, mean=[0.5] * 3, std=[0.25] * 3)
    want = (RGB[:, 5:15, 5:15].astype("float32") / 255 - 0.5) / 0.25
    assert_close(np_(a(RGB)), want, dtype="float32", terms=bilinear_terms(20) + 2)


def test_random_resized_crop_boxes_respect_area_and_aspect():
    # On a 30x30 image every box with area <= 0.6 and aspect in [0.6, 1.6] fits.
    layer = views.RandomResizedCrop((8, 8), area_range=(0.3, 0.6), aspect_range=(0.6, 1.6),
                                    seed=0, allow_upsample=True)
    y0, x0, h, w = (np_(t) for t in layer.sample_boxes(4000, 30.0, 30.0))
    area = h * w / 900
    # Boxes from area and aspect through a few float32 ops (sqrt, exp, products).
    tol, side_tol = (bound([m], dtype="float32", terms=8) for m in (1.0, 30.0))
    assert 0.3 - tol <= area.min() and area.max() <= 0.6 + tol
    # Statistical, not rounding: the mean of 4000 uniform areas has a std of ~0.0013.
    assert abs(area.mean() - 0.45) < 0.01
    assert 0.6 - tol <= (w / h).min() and (w / h).max() <= 1.6 + tol
    assert (y0 >= 0).all() and (x0 >= 0).all()
    assert (y0 + h <= 30 + side_tol).all() and (x0 + w <= 30 + side_tol).all()
    # Statistical (log-uniform aspect; std of the mean of 4000 ~0.003), not rounding.
    assert abs(np.mean(np.log(w / h)) - np.log(0.6 * 1.6) / 2) < 0.02
    # A 40x10 image cannot hold a 0.9-area box of aspect ~1: the fallback is the whole
    # image with its aspect clamped to the range (here the widest allowed, 1.6 x tall).
    layer = views.RandomResizedCrop((8, 8), area_range=(0.9, 1.0), aspect_range=(0.6, 1.6),
                                    attempts=3, seed=0)
    y0, x0, h, w = (np_(t) for t in layer.sample_boxes(50, 10.0, 40.0))
    assert_close(h, 10.0, dtype="float32", terms=8, magnitude=16.0)
    assert_close(w, 16.0, dtype="float32", terms=8)


def test_colour_jitter_order_is_random_per_image_and_p_applies():
    # Contrast then brightness differs from brightness then contrast (additive mode).
    jitter = views.ColorJitter(brightness=0.5, contrast=0.9, saturation=0, hue=0, p=1.0,
                               brightness_mode="additive", seed=0)
    x = np.tile(RGB[:1], (400, 1, 1, 1))
    out = np_(jitter(x))
    assert len({round(float(v), 4) for v in out.mean(axis=(1, 2, 3))}) > 300
    never = views.ColorJitter(p=0.0, seed=0)
    assert_close(np_(never(RGB)), RGB.astype("float32") / 255, dtype="float32", terms=2)
    gray = views.RandomGrayscale(p=1.0)(RGB)
    np.testing.assert_array_equal(np_(gray)[..., 0], np_(gray)[..., 2])  # one channel copied


def test_single_channel_images_pass_saturation_hue_and_grayscale():
    out = views.get("simclr", image_size=(8, 8), seed=0)(GRAY)
    assert np_(out).shape == (4, 8, 8, 1)


def test_multiview_shapes_and_views_differ():
    mv = views.MultiView(views.get("cifar", image_size=(12, 12), seed=0), num_views=3)
    out = np_(mv(RGB))
    assert out.shape == (6, 3, 12, 12, 3)
    assert not is_close(out[:, 0], out[:, 1], dtype="float32", terms=POLICY_TERMS)
    assert np_(mv(RGB[0])).shape == (3, 12, 12, 3)
    assert mv.compute_output_shape((None, 20, 20, 3)) == (None, 3, 12, 12, 3)


def test_serialization_round_trip():
    mv = views.MultiView(views.get("simclr", image_size=(12, 12), seed=5), num_views=2)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(mv))
    assert isinstance(clone, views.MultiView) and clone.num_views == 2
    np.testing.assert_array_equal(np_(clone(RGB)), np_(views.MultiView(
        views.get("simclr", image_size=(12, 12), seed=5), num_views=2)(RGB)))
    for name, kwargs in POLICY_CASES:
        a = views.get(name, **kwargs)  # Config round trip only (no call: fast).
        b = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(a))
        assert b.get_config() == a.get_config()


# --- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("build,match", [
    (lambda: views.MultiView(views.get("digits"), num_views=0), "num_views"),
    (lambda: views.MultiView(views.get("digits"), num_views=1.5), "num_views"),
    (lambda: views.get("simclr", image_size=(0, 8)), "image_size"),
    (lambda: views.get("simclr", image_size=8, area_range=(0.5, 0.2)), "area_range"),
    (lambda: views.ColorJitter(p=1.5), "p"),
    (lambda: views.ColorJitter(hue=0.7), "hue"),
    (lambda: views.ColorJitter(brightness_mode="gamma"), "brightness_mode"),
    (lambda: views.get("simclrr"), "simclr"),
])
def test_bad_arguments_name_the_parameter(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_target_larger_than_images_is_an_error_unless_upsampling():
    with pytest.raises(ValueError, match=r"larger than the input images \(8, 8\)"):
        views.get("cifar", image_size=(32, 32))(GRAY)
    assert np_(views.get("cifar", image_size=(16, 16), allow_upsample=True)(GRAY)).shape == (
        4, 16, 16, 1)
