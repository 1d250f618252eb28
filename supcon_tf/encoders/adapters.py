"""Any Keras model as an encoder: images [batch, H, W, C] -> representation [batch, dim]."""

import keras


def as_encoder(model, name=None):
    """Returns `model` if it already outputs a vector per image, else adds pooling.

    Accepts e.g. `keras.applications.ResNet50(include_top=False)`, whose output is
    a feature map: it is global-average-pooled, as in the papers.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`encoder` must be a keras.Model or a registered encoder name; received "
            f"{type(model).__name__}."
        )
    shape = model.output.shape if hasattr(model, "output") and model.built else None
    if shape is None or len(shape) == 2:
        return model
    if len(shape) != 4:
        raise ValueError(
            "`encoder` must output [batch, dim] or a [batch, H, W, C] feature map; "
            f"received output shape {tuple(shape)}."
        )
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(model.output)
    return keras.Model(model.inputs, pooled, name=name or f"{model.name}_pooled")
