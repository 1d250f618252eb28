"""Your own data through the command line: a folder of mixed photos, TFDS from a data_dir.

Two `supcon-tf` runs (started together): a folder made here (JPEG and PNG, grayscale
and RGB, three sizes, one corrupt file) with `dataset.corrupt=skip`, and a tiny TFDS
dataset prepared here in a data_dir of its own. The errors, and NumPy arrays from an
.npz file, are checked in-process, through what the command runs before any training
(`session.prepare`, `build.load_data`).
"""

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from _cli_runs import ROOT, run_many
from _tiny_tfds import SupconTinyImages
from supcon_tf import data
from supcon_tf.cli import build, session
from supcon_tf.cli.config_flag import parse_config
from supcon_tf.cli.errors import UsageError

SIZES = [(12, 16), (16, 16), (20, 14)]  # (height, width); shorter sides 12, 16, 14
# A :local-sized run on a handful of images, the same for both datasets.
SMALL = ["--config=configs/digits_supcon.py:local", "--config.pretrain.epochs=1",
         "--config.linear.epochs=1", "--config.eval.plots=False",
         "--config.pretrain.batch_size=4", "--config.linear.batch_size=4",
         "--config.export.enabled=False"]


def make_photos(root, per_class=6, corrupt=True):
    """root/{train,test}/{cat,dog}/: JPEGs and PNGs, grayscale and RGB, of three sizes
    (cats bright at the top, dogs at the bottom); one corrupt JPEG in train/cat."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", per_class // 2)):
        for c, cls in enumerate(("cat", "dog")):
            folder = os.path.join(root, split, cls)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                h, w = SIZES[i % 3]
                image = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
                half = slice(0, h // 2) if c == 0 else slice(h // 2, h)
                image[half] += 150
                img = Image.fromarray(image)
                if i % 2 == 0:
                    img = img.convert("L")
                ext = "png" if i % 3 else "jpg"
                img.save(os.path.join(folder, f"{i}.{ext}"))
    if corrupt:
        with open(os.path.join(root, "train", "cat", "broken.jpg"), "wb") as f:
            f.write(b"\xff\xd8 not a JPEG after all")
    return root


def parsed_config(*overrides, config="configs/digits_supcon.py:local"):
    """The config `supcon-tf --config=CONFIG OVERRIDES...` resolves to (in-process)."""
    return parse_config(os.path.join(ROOT, config), *overrides)


def prepare(tmp_path, *overrides):
    settings = session.Settings(config=parsed_config(*overrides),
                                config_path=os.path.join(ROOT, "configs", "digits_supcon.py"),
                                config_given=True, workdir=str(tmp_path / "w"))
    lines = []
    return session.prepare(settings, log=lines.append), lines


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The two command-line runs: (status, output, workdir) for the folder and TFDS."""
    tmp = tmp_path_factory.mktemp("own_data")
    photos = make_photos(str(tmp / "photos"))
    tfds_dir = str(tmp / "tfds")
    SupconTinyImages(data_dir=tfds_dir).download_and_prepare()
    folder_args = SMALL + [f"--config.dataset.name=folder:{photos}",
                           "--config.dataset.to_rgb=True", "--config.dataset.corrupt=skip",
                           f"--workdir={tmp / 'photos_run'}"]
    tfds_args = SMALL + ["--config.dataset.name=supcon_tiny_images",
                         f"--config.dataset.data_dir={tfds_dir}",
                         f"--workdir={tmp / 'tfds_run'}"]
    (fs, fout), (ts, tout) = run_many([folder_args, tfds_args], timeout=600)
    return {"folder": (fs, fout, tmp / "photos_run", photos),
            "tfds": (ts, tout, tmp / "tfds_run", tfds_dir)}


def test_a_folder_of_mixed_photos_trains_with_corrupt_skip(runs):
    status, output, workdir, photos = runs["folder"]
    assert status == 0, output
    skipped = [line for line in output.splitlines() if "dataset.corrupt=skip" in line]
    assert len(skipped) == 1 and "skipped 1 corrupt image file(s) of split 'train'" in skipped[0]
    assert "broken.jpg" in skipped[0]
    rule = [line for line in output.splitlines() if "views.image_size is unset" in line]
    # 12 readable training images, 4 of each size: shorter sides 12, 14, 16; median 14.
    assert len(rule) == 1, output
    assert "the 12 training images vary in size (3 sizes, 12x16 to 20x14)" in rule[0]
    assert "training at 14x14, the median shorter side (at most 224)" in rule[0]
    assert "linear evaluation (test split): top-1" in output
    config = json.loads((workdir / "config.json").read_text())
    assert config["dataset"] | {"name": None} == {
        "name": None, "data_dir": None, "download": False, "train_split": "train",
        "test_split": "test", "shuffle_buffer": 2048, "image_size": None, "to_rgb": True,
        "corrupt": "skip", "label_key": None}
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert 0.0 <= metrics["linear_top1"] <= 1.0


def test_tfds_from_a_prepared_data_dir_trains(runs):
    status, output, workdir, tfds_dir = runs["tfds"]
    assert status == 0, output
    assert "supcon on supcon_tiny_images finished" in output
    config = json.loads((workdir / "config.json").read_text())
    assert config["dataset"]["data_dir"] == tfds_dir
    assert "views.image_size is unset" not in output  # One size: no rule needed.


def test_corrupt_error_names_the_file_and_the_config_key(tmp_path):
    photos = make_photos(str(tmp_path / "photos"), per_class=3)
    with pytest.raises(UsageError) as err:
        prepare(tmp_path, f"--config.dataset.name=folder:{photos}",
                "--config.dataset.to_rgb=True")
    message = str(err.value)
    assert "Corrupt image file" in message and "broken.jpg" in message
    assert "Pass --config.dataset.corrupt=skip to drop them" in message
    assert "corrupt='skip'" not in message  # A library argument the CLI cannot pass.
    assert not os.path.exists(tmp_path / "w")


def test_mixed_channels_error_names_the_config_key(tmp_path):
    photos = make_photos(str(tmp_path / "photos"), per_class=3, corrupt=False)
    with pytest.raises(UsageError) as err:
        prepare(tmp_path, f"--config.dataset.name=folder:{photos}")
    message = str(err.value)
    assert "mixed channel counts" in message
    assert "Pass --config.dataset.to_rgb=True to convert grayscale images to RGB" in message
    assert "to_rgb=True" not in message.replace("--config.dataset.to_rgb=True", "")


def test_an_unprepared_tfds_dataset_names_data_dir_and_the_fixes(tmp_path):
    empty = tmp_path / "empty_tfds"
    empty.mkdir()
    with pytest.raises(UsageError) as err:
        build.load_data({**parsed_config("--config.dataset.name=cifar10",
                                         f"--config.dataset.data_dir={empty}").dataset})
    message = str(err.value)
    for text in ("TFDS dataset 'cifar10'", f"is not prepared in data_dir '{empty}'",
                 f"searched '{empty}/cifar10/", "Pass --config.dataset.download=True",
                 "Pass --config.dataset.data_dir=DIR", "tfds build cifar10 --data_dir=DIR"):
        assert text in message, message


def test_size_rule_and_refusal_without_known_sizes():
    config = {"views": {"image_size": None}}
    info = data.DatasetInfo("folder:/x", 2, (None, None, 3), {"train": 5}, ["a", "b"],
                            image_sizes={(300, 400): 2, (500, 250): 1, (1000, 900): 2})
    lines = []
    # Shorter sides 300, 300, 250, 900, 900: median 300, capped at 224.
    assert build.image_shape(config, info, lines.append) == (224, 224, 3)
    assert len(lines) == 1 and "training at 224x224" in lines[0]
    small = data.DatasetInfo("folder:/x", 2, (None, None, 1), {"train": 3}, ["a", "b"],
                             image_sizes={(30, 40): 2, (50, 25): 1})
    assert build.image_shape(config, small, lines.append) == (30, 30, 1)
    info = data.DatasetInfo("imagenet2012", 2, (None, None, 3), {"train": 5}, ["a", "b"])
    with pytest.raises(UsageError, match=r"'views.image_size' must be set.*Add "
                                         r"--config.views.image_size='\(224, 224\)'"):
        build.image_shape(config, info, lines.append)
    assert build.image_shape({"views": {"image_size": (16, 8)}}, info) == (16, 8, 3)


@pytest.mark.parametrize("override, message", [
    ("--config.dataset.corrupt=skip", "'dataset.corrupt' applies to image folders "
                                      "(folder:/path) only, not to dataset 'digits'"),
    ("--config.dataset.download=True", "'dataset.download' applies to TFDS datasets only"),
    ("--config.dataset.data_dir=/data/tfds", "Remove --config.dataset.data_dir=/data/tfds"),
])
def test_a_loader_key_for_another_source_is_refused(override, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        build.loader_options(parsed_config(override).dataset)


def test_image_size_and_to_rgb_apply_to_every_source():
    train, _, info = build.load_data(parsed_config("--config.dataset.image_size=(16, 12)",
                                                   "--config.dataset.to_rgb=True").dataset)
    assert info.image_shape == (16, 12, 3)
    image, _ = next(iter(train))
    image = image.numpy()
    assert image.shape == (16, 12, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], image[..., 2])  # Gray repeated to RGB.
    constant = np.full((2, 6, 4, 1), 77, np.uint8)
    ds, info = data.from_arrays(constant, np.array([0, 1]), image_size=(3, 5), to_rgb=True)
    assert info.image_shape == (3, 5, 3)
    for image, _ in ds:  # A constant image stays that constant when resized.
        np.testing.assert_array_equal(image.numpy(), np.full((3, 5, 3), 77, np.uint8))


def test_a_flat_folder_without_a_test_split_names_the_key(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "flat" / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "flat" / cls / "x.png")
    with pytest.raises(UsageError, match=r"has no split 'test'; found splits: train\. Pass "
                                         r"--config\.dataset\.test_split=train"):
        build.load_data(parsed_config(f"--config.dataset.name=folder:{tmp_path / 'flat'}")
                        .dataset)


def test_numpy_arrays_from_an_npz_file_with_the_same_keys(tmp_path):
    x_train = np.stack([np.full((5, 7), 10 * i, np.uint8) for i in range(6)])  # Grayscale.
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x_train, y_train=np.arange(6) % 3, x_test=x_train[:2],
             y_test=np.array([3, 0]))  # Class 3 only in the test split.
    train, test, info = build.load_data(parsed_config(
        f"--config.dataset.name=npz:{path}", "--config.dataset.to_rgb=True",
        "--config.dataset.image_size=(10, 14)").dataset)
    assert info.num_classes == 4 and info.split_sizes == {"train": 6, "test": 2}
    assert info.image_shape == (10, 14, 3)
    got = [(x.numpy(), int(y)) for x, y in train]
    assert [y for _, y in got] == [0, 1, 2, 0, 1, 2]
    for i, (image, _) in enumerate(got):  # Constant images stay constant, in RGB.
        np.testing.assert_array_equal(image, np.full((10, 14, 3), 10 * i, np.uint8))
    assert [int(y) for _, y in test] == [3, 0]
    with pytest.raises(UsageError, match=re.escape(
            "'dataset.corrupt' applies to image folders (folder:/path) only")):
        build.load_data(parsed_config(f"--config.dataset.name=npz:{path}",
                                      "--config.dataset.corrupt=skip").dataset)
    np.savez(path, x_train=x_train, y_train=np.arange(6) % 3)
    with pytest.raises(UsageError, match=r"has no split 'test'; found splits: train\. Pass "
                                         r"--config\.dataset\.test_split=train"):
        build.load_data(parsed_config(f"--config.dataset.name=npz:{path}").dataset)
