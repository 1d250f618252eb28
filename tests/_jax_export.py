"""Trains and exports the export tests' small run on Keras' JAX backend (run by the tests).

Usage: KERAS_BACKEND=jax python _jax_export.py OUT_DIR

Writes OUT_DIR/export (the SavedModel) and OUT_DIR/reference.npz (images and the
outputs of the in-memory JAX models) for the test to check in a TensorFlow process; and
the tiny CLIP model's image-text export (`_clip_export.write`) in the same process.
"""

import os
import shutil
import sys

import keras
import numpy as np

import _clip_export
import _export_helpers as helpers


def main(out_dir):
    assert keras.backend.backend() == "jax", keras.backend.backend()
    run = helpers.trained_run()
    images, _ = helpers.data(n=8, seed=12)
    uint8 = (images * 255).round().astype(np.uint8)
    reference = helpers.reference_outputs(run, images)
    np.savez(os.path.join(out_dir, "reference.npz"), images=images, uint8=uint8,
             **{f"ref_{k}": v for k, v in reference.items()},
             **{f"ref8_{k}": v for k, v in helpers.reference_outputs(run, uint8).items()})
    shutil.copytree(run.export_dir, os.path.join(out_dir, "export"))
    _clip_export.write(out_dir)


if __name__ == "__main__":
    main(sys.argv[1])
