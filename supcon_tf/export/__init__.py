"""Export a trained run as a TF Hub reusable SavedModel; `.keras` save/load of full models.

`export_saved_model` writes a SavedModel that loads without this package, through
`tensorflow_hub.load`, `hub.KerasLayer` (tf_keras) and `keras.layers.TFSMLayer`:

- `obj(images, training=False)` returns the representation [batch, dim] (TF Hub's
  image-feature-vector convention); `training=True` runs BatchNorm in training
  mode (synchronized BatchNorm included) and is differentiable, for fine-tuning.
- `obj.variables`, `obj.trainable_variables`, `obj.regularization_losses`.
- signatures (float32 images [batch, H, W, C] in [0, 1]):
  `serving_default` -> {unnormalized_embeddings, embeddings, projection, logits,
  probabilities} (projection only with a head, logits/probabilities only with a
  classifier head); `embed` -> {unnormalized_embeddings}; `project` -> {projection};
  `classify` -> {logits}.
- the same four as `NAME_uint8`, taking uint8 images in [0, 255]; `encoded` takes a
  tf.string batch of JPEG/PNG bytes, decodes and resizes them in the graph, and
  returns `serving_default`'s outputs (TF Serving's REST `{"b64": ...}`).
- attribute functions of the same names (`obj.embed(images)`, ...) that also
  take uint8 images in [0, 255].
- the tf.Variables those functions read, tracked as themselves (as Keras'
  ExportArchive does), so that TF1's session loader (TF Serving, `saved_model_cli`)
  and the TFLite converter restore them.
- assets: `class_names.txt` (one per line) and `config.json`.

`overwrite=True` replaces only an export (or an empty folder): a folder holding other
files is refused, nothing in it deleted (`check_replaceable`).

`write_formats` writes ONNX / LiteRT files beside it through Keras' `model.export`
(formats by name, `check_formats`); `load_saved_model` loads one with clear errors;
`save_keras` / `load_keras` round-trip
the full Keras models. TensorFlow is imported inside the functions: the package may
load under JAX.
"""

from supcon_tf.export.encoded_images import ENCODED_SIGNATURE
from supcon_tf.export.formats import (
    DEFAULT_FORMATS,
    FORMATS,
    check_formats,
    serving_model,
    write_formats,
)
from supcon_tf.export.keras_files import load_keras, save_keras
from supcon_tf.export.loading import load_saved_model, read_class_names, read_config
from supcon_tf.export.saved_model import (
    CLASS_NAMES_FILE,
    CONFIG_FILE,
    EXPORT_ENTRIES,
    INPUT_DTYPES,
    OUTPUTS,
    SIGNATURE_OUTPUTS,
    check_replaceable,
    export_saved_model,
)

__all__ = [
    "CLASS_NAMES_FILE",
    "CONFIG_FILE",
    "DEFAULT_FORMATS",
    "ENCODED_SIGNATURE",
    "EXPORT_ENTRIES",
    "FORMATS",
    "INPUT_DTYPES",
    "OUTPUTS",
    "SIGNATURE_OUTPUTS",
    "check_formats",
    "check_replaceable",
    "export_saved_model",
    "load_keras",
    "load_saved_model",
    "read_class_names",
    "read_config",
    "save_keras",
    "serving_model",
    "write_formats",
]
