"""TensorBoard Embedding Projector files for a set of representations.

Writes, into `logdir`: `embeddings.tsv` (one row of floats per sample),
`metadata.tsv` (its label, and class name when given), `sprite.png` (the samples'
images tiled in a square grid, for small images) and `projector_config.pbtxt`,
which points TensorBoard's projector at them (`tensorboard --logdir <logdir>`,
"Projector" tab). Plain files: no TensorFlow or TensorBoard needed to write them.
"""

import math
import os

import numpy as np

from supcon_tf.evaluation.embed import as_class_ids
from supcon_tf.validation import check_positive

# TensorBoard's projector refuses sprites larger than this many pixels per side.
MAX_SPRITE_SIDE = 8192


def sprite_image(images):
    """Tiles images [n, h, w, c] row-major into a square uint8 grid [s*h, s*w, c]."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError("`images` must be [n, height, width, channels] with 1, 3 or 4 "
                         f"channels; received shape {images.shape}.")
    if images.dtype != np.uint8:
        images = images.astype(np.float32)
        low, high = float(images.min()), float(images.max())
        images = (images - low) / (high - low if high > low else 1.0)
        images = np.round(images * 255).astype(np.uint8)
    n, h, w, c = images.shape
    side = int(math.ceil(math.sqrt(n)))
    grid = np.zeros((side * side, h, w, c), np.uint8)
    grid[:n] = images
    grid = grid.reshape(side, side, h, w, c).transpose(0, 2, 1, 3, 4)
    return grid.reshape(side * h, side * w, c)


def write_projector(logdir, embeddings, labels, images=None, class_names=None,
                    tensor_name="representation", sample=None, seed=0):
    """Writes the projector files for `embeddings` [n, dim] into `logdir`; returns their paths.

    `images` [n, h, w, c] (optional) become the sprite, skipped (with a note in the
    returned dict under "sprite_skipped") when the grid would exceed TensorBoard's
    8192-pixel limit. `sample` keeps a random subset of that many samples.
    """
    embeddings = np.asarray(embeddings, np.float32)
    labels = as_class_ids(labels)
    if embeddings.ndim != 2 or len(embeddings) != len(labels) or not len(labels):
        raise ValueError(
            "`embeddings` must be [n, dim] (n > 0) with one label each; received shapes "
            f"{embeddings.shape} and {labels.shape}."
        )
    if images is not None and len(images) != len(labels):
        raise ValueError(f"`images` must hold one image per embedding ({len(labels)}); "
                         f"received {len(images)}.")
    if class_names is not None and labels.max() >= len(class_names):
        raise ValueError(f"`class_names` must name every label; label {labels.max()} has no "
                         f"name among {len(class_names)}.")
    if sample is not None:
        check_positive("sample", sample)
        if sample < len(labels):
            keep = np.sort(np.random.default_rng(seed).choice(len(labels), sample,
                                                              replace=False))
            embeddings, labels = embeddings[keep], labels[keep]
            images = None if images is None else np.asarray(images)[keep]

    os.makedirs(logdir, exist_ok=True)
    files = {"embeddings": "embeddings.tsv", "metadata": "metadata.tsv"}
    np.savetxt(os.path.join(logdir, files["embeddings"]), embeddings, fmt="%.6g",
               delimiter="\t")
    with open(os.path.join(logdir, files["metadata"]), "w", encoding="utf-8") as f:
        if class_names is None:  # One column: TensorBoard wants no header.
            f.writelines(f"{y}\n" for y in labels)
        else:
            f.write("label\tclass\n")
            f.writelines(f"{y}\t{_tsv_cell(class_names[y])}\n" for y in labels)

    result = {}
    sprite_lines = []
    if images is not None:
        images = np.asarray(images)
        h, w = images.shape[1:3]
        side = int(math.ceil(math.sqrt(len(images))))
        if side * max(h, w) > MAX_SPRITE_SIDE:
            result["sprite_skipped"] = (
                f"a {side}x{side} grid of {h}x{w} images exceeds {MAX_SPRITE_SIDE} pixels; "
                "pass `sample` or smaller images for a sprite")
        else:
            from PIL import Image

            grid = sprite_image(images)
            mode = {1: "L", 3: "RGB", 4: "RGBA"}[grid.shape[-1]]
            Image.fromarray(grid[..., 0] if mode == "L" else grid, mode).save(
                os.path.join(logdir, "sprite.png"))
            files["sprite"] = "sprite.png"
            sprite_lines = [
                "  sprite {",
                '    image_path: "sprite.png"',
                f"    single_image_dim: {w}",
                f"    single_image_dim: {h}",
                "  }",
            ]
    config = "\n".join([
        "embeddings {",
        f'  tensor_name: "{tensor_name}"',
        f"  tensor_shape: {embeddings.shape[0]}",
        f"  tensor_shape: {embeddings.shape[1]}",
        f'  tensor_path: "{files["embeddings"]}"',
        f'  metadata_path: "{files["metadata"]}"',
        *sprite_lines,
        "}",
        "",
    ])
    with open(os.path.join(logdir, "projector_config.pbtxt"), "w", encoding="utf-8") as f:
        f.write(config)
    files["config"] = "projector_config.pbtxt"
    result.update({k: os.path.join(logdir, v) for k, v in files.items()})
    result["num_points"] = int(len(labels))
    return result


def _tsv_cell(text):
    return str(text).replace("\t", " ").replace("\n", " ")
