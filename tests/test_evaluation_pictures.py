"""Embedding maps, the confusion-matrix picture and TensorBoard projector files."""

import re

import numpy as np
import pytest
from PIL import Image

from png_reference import png_size
from supcon_tf import evaluation
from tolerance import assert_close


@pytest.fixture(autouse=True)
def one_openmp_thread():
    """t-SNE on one thread: its OpenMP workers spin badly on a busy 2-core CI box."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        yield


def clustered(n=90, classes=3, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centers = rng.standard_normal((classes, dim)) * 5
    return (centers[labels] + rng.standard_normal((n, dim))).astype(np.float32), labels


def test_plot_embedding_tsne_png(tmp_path):
    embeddings, labels = clustered()
    path = tmp_path / "pictures" / "tsne.png"
    result = evaluation.plot_embedding(embeddings, labels, str(path), method="tsne",
                                       class_names=["a", "b", "c"], sample=60, seed=1,
                                       figsize=(4, 3), dpi=50)
    assert png_size(path) == (200, 150)
    Image.open(path).verify()
    assert result["points"].shape == (60, 2) and len(set(result["indices"])) == 60
    # t-SNE keeps the well-separated classes apart: each point's nearest mapped
    # neighbour belongs to its class.
    points, chosen = result["points"], labels[result["indices"]]
    dist = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(60) * 1e9
    assert np.mean(chosen[dist.argmin(1)] == chosen) > 0.9
    # Same seed, same picture coordinates.
    again = evaluation.plot_embedding(embeddings, labels, str(tmp_path / "b.png"), sample=60,
                                      seed=1, figsize=(4, 3), dpi=50)
    # The same t-SNE again: float32 sums over the 60 points, in whatever order the kernels
    # take (magnitude: the coordinates').
    assert_close(again["points"], points, dtype="float32", terms=60)


def test_plot_embedding_umap_or_clear_error(tmp_path):
    embeddings, labels = clustered(30)
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="umap-learn"):
            evaluation.plot_embedding(embeddings, labels, str(tmp_path / "u.png"),
                                      method="umap")
    else:
        evaluation.plot_embedding(embeddings, labels, str(tmp_path / "u.png"), method="umap")
        assert png_size(tmp_path / "u.png") == (800, 800)


def test_plot_embedding_bad_input(tmp_path):
    embeddings, labels = clustered(30)
    with pytest.raises(ValueError, match="`method` must be one of 'tsne', 'umap', 'auto'"):
        evaluation.plot_embedding(embeddings, labels, str(tmp_path / "x.png"), method="pca")
    with pytest.raises(ValueError, match="one label each"):
        evaluation.plot_embedding(embeddings, labels[:-1], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="must name all 3 classes"):
        evaluation.plot_embedding(embeddings, labels, str(tmp_path / "x.png"),
                                  class_names=["a"])


def test_plot_confusion_matrix_size(tmp_path):
    path = tmp_path / "cm.png"
    evaluation.plot_confusion_matrix([[5, 1], [0, 4]], str(path), ["cat", "dog"],
                                     figsize=(3, 2), dpi=80)
    assert png_size(path) == (240, 160)
    pixels = np.asarray(Image.open(path).convert("RGB"))
    assert pixels.shape == (160, 240, 3) and pixels.std() > 10  # Something drawn.
    with pytest.raises(ValueError, match="must be square"):
        evaluation.plot_confusion_matrix([[1, 2, 3]], str(path))


def parse_pbtxt(text):
    """The projector config's fields as (path, value) pairs; asserts balanced braces."""
    fields, stack = [], []
    for line in text.splitlines():
        line = line.strip()
        if line.endswith("{"):
            stack.append(line[:-1].strip())
        elif line == "}":
            stack.pop()
        elif line:
            key, value = re.fullmatch(r'(\w+): ("[^"]*"|\d+)', line).groups()
            fields.append((".".join(stack + [key]), value.strip('"')))
    assert not stack
    return fields


def test_write_projector_files(tmp_path):
    embeddings, labels = clustered(10, dim=4)
    images = np.random.default_rng(0).random((10, 6, 5, 1)).astype(np.float32)
    out = evaluation.write_projector(str(tmp_path), embeddings, labels, images=images,
                                     class_names=["a", "b", "c"])
    # Not a float rounding bound: the file holds 6 significant digits (fmt "%.6g").
    np.testing.assert_allclose(np.loadtxt(out["embeddings"], delimiter="\t"), embeddings,
                               rtol=1e-5)
    rows = (tmp_path / "metadata.tsv").read_text().splitlines()
    assert rows[0] == "label\tclass"
    assert rows[1:] == [f"{y}\t{'abc'[y]}" for y in labels]
    # 10 images of 6x5 (h x w) on a 4x4 grid.
    assert png_size(out["sprite"]) == (4 * 5, 4 * 6)
    assert parse_pbtxt((tmp_path / "projector_config.pbtxt").read_text()) == [
        ("embeddings.tensor_name", "representation"),
        ("embeddings.tensor_shape", "10"),
        ("embeddings.tensor_shape", "4"),
        ("embeddings.tensor_path", "embeddings.tsv"),
        ("embeddings.metadata_path", "metadata.tsv"),
        ("embeddings.sprite.image_path", "sprite.png"),
        ("embeddings.sprite.single_image_dim", "5"),
        ("embeddings.sprite.single_image_dim", "6"),
    ]


def test_projector_config_parses_as_the_tensorboard_proto(tmp_path):
    projector = pytest.importorskip("tensorboard.plugins.projector.projector_config_pb2")
    from google.protobuf import text_format

    embeddings, labels = clustered(10, dim=4)
    evaluation.write_projector(str(tmp_path), embeddings, labels,
                               images=np.zeros((10, 4, 4, 3), np.uint8))
    config = text_format.Parse((tmp_path / "projector_config.pbtxt").read_text(),
                               projector.ProjectorConfig())
    assert config.embeddings[0].sprite.single_image_dim == [4, 4]


def test_projector_without_names_sampling_and_big_sprites(tmp_path):
    embeddings, labels = clustered(50, dim=4)
    out = evaluation.write_projector(str(tmp_path), embeddings, labels, sample=20,
                                     images=np.zeros((50, 2000, 2000, 1), np.uint8))
    assert out["num_points"] == 20
    rows = (tmp_path / "metadata.tsv").read_text().splitlines()
    assert len(rows) == 20 and all(r in {"0", "1", "2"} for r in rows)  # No header.
    assert "sprite" not in out and "8192" in out["sprite_skipped"]
    assert "sprite" not in (tmp_path / "projector_config.pbtxt").read_text()
    with pytest.raises(ValueError, match="one label each"):
        evaluation.write_projector(str(tmp_path), embeddings, labels[:3])


def test_sprite_image_layout():
    images = np.stack([np.full((2, 3, 1), v, np.uint8) for v in (10, 20, 30)])
    grid = evaluation.sprite_image(images)
    assert grid.shape == (4, 6, 1)  # 2x2 grid of 2x3 images; the last cell empty.
    np.testing.assert_array_equal(grid[:, :, 0], [[10, 10, 10, 20, 20, 20],
                                                  [10, 10, 10, 20, 20, 20],
                                                  [30, 30, 30, 0, 0, 0],
                                                  [30, 30, 30, 0, 0, 0]])
    floats = evaluation.sprite_image(np.array([[[[-1.0]]], [[[1.0]]]]))
    np.testing.assert_array_equal(floats[..., 0], [[0, 255], [0, 0]])
