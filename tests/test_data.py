"""Loaders on locally made data: digits, arrays, an image folder, a TFDS dataset built locally."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from _tiny_tfds import SupconTinyImages
from supcon_tf import data

RNG = np.random.default_rng(0)


def items(ds):
    return [(x.numpy(), int(y.numpy())) for x, y in ds]


# --- digits ----------------------------------------------------------------------------------

def test_digits_split_is_fixed_disjoint_stratified_and_uint8():
    from sklearn.datasets import load_digits

    train, info = data.load("digits", "train")
    test, _ = data.load("digits", "test")
    assert info.num_classes == 10 and info.image_shape == (8, 8, 1)
    assert info.split_sizes == {"train": 1437, "test": 360}
    assert info.class_names == [str(i) for i in range(10)]
    assert train.element_spec[0].dtype == tf.uint8 and train.element_spec[1].dtype == tf.int64
    xs, ys = data.digits.load_digits_arrays("train")
    xt, yt = data.digits.load_digits_arrays("test")
    assert xs.shape == (1437, 8, 8, 1) and xt.shape == (360, 8, 8, 1)
    assert xs.max() == 255 and xs.min() == 0
    # The two splits partition the 1,797 images, identically on every call.
    idx = data.digits.split_indices()
    assert len(np.intersect1d(idx["train"], idx["test"])) == 0
    assert len(np.union1d(idx["train"], idx["test"])) == 1797
    np.testing.assert_array_equal(idx["test"], data.digits.split_indices()["test"])
    bunch = load_digits()
    np.testing.assert_array_equal(xt[:, :, :, 0], np.round(bunch.images[idx["test"]] * 255 / 16))
    assert np.bincount(yt).min() >= 35                         # stratified: ~36 per class
    first = items(test.take(3))
    np.testing.assert_array_equal(first[0][0], xt[0])
    assert [y for _, y in first] == list(yt[:3])


# --- arrays ----------------------------------------------------------------------------------

def test_from_arrays_uint8_float_and_errors():
    images = RNG.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    labels = np.array([0, 2, 1, 2, 0])
    ds, info = data.from_arrays(images, labels, class_names=["a", "b", "c"])
    assert info.num_classes == 3 and info.image_shape == (4, 4, 3) and info.split_sizes == {
        "train": 5}
    got = items(ds)
    np.testing.assert_array_equal(np.stack([x for x, _ in got]), images)
    assert [y for _, y in got] == list(labels)
    ds, info = data.from_arrays(images / 255.0, labels)
    np.testing.assert_array_equal(np.stack([x for x, _ in items(ds)]), images)
    assert info.class_names == ["0", "1", "2"]
    ds, info = data.from_arrays(images[..., 0], labels)
    assert info.image_shape == (4, 4, 1)
    with pytest.raises(ValueError, match="labels"):
        data.from_arrays(images, labels[:3])
    with pytest.raises(ValueError, match=r"float `images` must be in \[0, 1\]"):
        data.from_arrays(images * 2.0, labels)
    with pytest.raises(ValueError, match="class_names"):
        data.from_arrays(images, labels, class_names=["a", "b"])


# --- image folders ---------------------------------------------------------------------------

def save(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def make_folder(root, layout="flat", gray_one=False):
    pixels = {}
    splits = ["train", "test"] if layout == "splits" else [None]
    for split in splits:
        base = root / split if split else root
        for c, cls in enumerate(["cat", "dog"]):
            for i in range(3):
                arr = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
                path = base / cls / f"{i}.png"
                save(path, arr)
                pixels[str(path)] = (arr, c)
        save(base / "dog" / "j.jpg", RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8))
        (base / "dog" / "notes.txt").write_text("not an image")
    if gray_one:
        save(root / "cat" / "gray.png", RNG.integers(0, 256, (6, 5), dtype=np.uint8))
    return pixels


def test_folder_flat_layout_decodes_pngs_exactly(tmp_path):
    pixels = make_folder(tmp_path)
    ds, info = data.load(f"folder:{tmp_path}")
    assert info.class_names == ["cat", "dog"] and info.num_classes == 2
    assert info.image_shape == (6, 5, 3) and info.split_sizes == {"train": 7}
    got = items(ds)
    assert len(got) == 7 and sorted(y for _, y in got) == [0, 0, 0, 1, 1, 1, 1]
    pngs = [v for v in pixels.values()]
    for arr, label in pngs:                                     # PNG is lossless
        assert any(np.array_equal(arr, x) and y == label for x, y in got)


def test_folder_split_layout_and_resize(tmp_path):
    make_folder(tmp_path, layout="splits")
    ds, info = data.from_folder(tmp_path, split="test", image_size=(4, 4))
    assert info.split_sizes == {"train": 7, "test": 7} and info.image_shape == (4, 4, 3)
    x, _ = items(ds)[0]
    assert x.shape == (4, 4, 3) and x.dtype == np.uint8
    with pytest.raises(ValueError, match="no split 'val'.*test, train"):
        data.from_folder(tmp_path, split="val")


def test_folder_mixed_channels_error_or_to_rgb(tmp_path):
    make_folder(tmp_path, gray_one=True)
    with pytest.raises(ValueError, match=r"mixed channel counts: 1 channel\(s\), e.g. .*gray.png"):
        data.from_folder(tmp_path)
    ds, info = data.from_folder(tmp_path, to_rgb=True)
    assert info.image_shape == (6, 5, 3) and len(items(ds)) == 8


def test_folder_all_grayscale_has_one_channel(tmp_path):
    for cls in ("a", "b"):
        save(tmp_path / cls / "x.png", RNG.integers(0, 256, (3, 3), dtype=np.uint8))
    ds, info = data.from_folder(tmp_path)
    assert info.image_shape == (3, 3, 1) and items(ds)[0][0].shape == (3, 3, 1)


def test_folder_corrupt_files_error_or_skip_with_log(tmp_path, caplog):
    make_folder(tmp_path)
    (tmp_path / "cat" / "garbage.jpg").write_bytes(b"\x00not a jpeg at all")
    good = tmp_path / "dog" / "0.png"
    (tmp_path / "dog" / "truncated.png").write_bytes(good.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"Corrupt image file .*(garbage.jpg|truncated.png).*"
                                         r"2 corrupt file"):
        data.from_folder(tmp_path, corrupt="error")
    with caplog.at_level(logging.WARNING, logger="supcon_tf.data"):
        ds, info = data.from_folder(tmp_path, corrupt="skip")
    assert "Skipping 2 corrupt image file(s)" in caplog.text and "garbage.jpg" in caplog.text
    assert len(items(ds)) == 7 and info.split_sizes == {"train": 7}
    assert sorted(os.path.basename(f) for f in info.skipped) == ["garbage.jpg", "truncated.png"]
    with pytest.raises(ValueError, match="corrupt"):
        data.from_folder(tmp_path, corrupt="ignore")


@pytest.mark.parametrize("setup,match", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "no class sub-folders"),
    (lambda p: ((p / "a").mkdir(), (p / "b").mkdir(), (p / "b" / "x.txt").write_text("x"), p)[-1],
     "No images"),
])
def test_folder_bad_layouts_name_the_path(tmp_path, setup, match):
    path = setup(tmp_path)
    with pytest.raises(ValueError, match=match) as err:
        data.load(f"folder:{path}")
    assert str(path) in str(err.value)


# --- TFDS, built locally ---------------------------------------------------------------------

def test_tfds_by_name_with_data_dir(tmp_path):
    SupconTinyImages(data_dir=str(tmp_path)).download_and_prepare()
    for name in ("supcon_tiny_images", "tfds:supcon_tiny_images"):
        ds, info = data.load(name, split="test", data_dir=str(tmp_path))
        assert info.num_classes == 3 and info.class_names == ["a", "b", "c"]
        assert info.image_shape == (8, 8, 3) and info.split_sizes == {"train": 9, "test": 6}
        got = items(ds)
        assert len(got) == 6 and got[0][0].dtype == np.uint8
        assert sorted(y for _, y in got) == [0, 0, 1, 1, 2, 2]
    rng = np.random.default_rng(6)
    expected = {rng.integers(0, 256, (8, 8, 3), dtype=np.uint8).tobytes() for _ in range(6)}
    assert {x.tobytes() for x, _ in got} == expected


def test_tfds_mock_data_cifar10_without_download():
    with tfds.testing.mock_data(num_examples=5):
        ds, info = data.load("cifar10", split="train")
    assert info.num_classes == 10 and info.image_shape == (32, 32, 3)
    assert len(info.class_names) == 10
    x, y = next(iter(ds))
    assert x.dtype == tf.uint8 and x.shape == (32, 32, 3) and y.dtype == tf.int64


def test_unknown_tfds_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"Unknown TFDS dataset `name`='cifar_10'.*cifar10"):
        data.load("cifar_10")
    with pytest.raises(ValueError, match="name"):
        data.load("")
