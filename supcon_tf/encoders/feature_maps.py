"""Named intermediate feature maps of an encoder, for methods that compare more than the
pooled representation (AMDIM's multi-scale maps, CPC's patch grid, dense methods).

`feature_maps(encoder, ["stage2", "output"])` returns a functional `keras.Model` that maps
images [batch, H, W, C] to a dict {name: tensor}; it shares every layer (and so every
weight) with `encoder`, so training it trains the encoder. Names are:

- `"output"`: the encoder's own output (the pooled representation), for every encoder;
- a ResNet's `"stem"` and `"stage1"` ... `"stage4"` (the output of each stage's last block);
- a `small_cnn`'s `"block1"` ... `"blockN"` (each conv-BN-ReLU block's output);
- any layer of any functional Keras model, by its layer name.

A name the encoder lacks is a ValueError naming `names` and listing the valid ones.
"""

import re

import keras

OUTPUT = "output"
_RESNET_STAGE = re.compile(r"^stage(\d+)_block(\d+)_out$")
_SMALL_BLOCK = re.compile(r"^relu(\d+)$")


def stage_names(encoder):
    """{alias: layer name} of the encoder's named stages (ResNet stages, small-CNN blocks)."""
    layer_names = [layer.name for layer in encoder.layers]
    aliases = {}
    if "stem_relu" in layer_names:
        aliases["stem"] = "stem_pool" if "stem_pool" in layer_names else "stem_relu"
    last_block = {}
    for name in layer_names:
        match = _RESNET_STAGE.match(name)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            if block >= last_block.get(stage, (0, None))[0]:
                last_block[stage] = (block, name)
    for stage, (_, name) in sorted(last_block.items()):
        aliases[f"stage{stage}"] = name
    if not last_block:
        for name in layer_names:
            match = _SMALL_BLOCK.match(name)
            if match:
                aliases[f"block{match.group(1)}"] = name
    return aliases


def available(encoder):
    """Every name `feature_maps` accepts for `encoder`: "output", the stage aliases, then
    the layer names."""
    aliases = stage_names(encoder)
    layers = [layer.name for layer in encoder.layers if layer.name not in aliases]
    return [OUTPUT, *aliases, *layers]


def _functional(encoder):
    """(inputs, output) of a functional model; ValueError naming `encoder` otherwise."""
    try:
        if not isinstance(encoder, keras.Model):
            raise TypeError(type(encoder).__name__)
        inputs = encoder.inputs
        return (inputs[0] if len(inputs) == 1 else inputs), encoder.output
    except (AttributeError, TypeError, ValueError) as e:
        raise ValueError(
            "`encoder` must be a functional Keras model (a registered encoder, or any "
            "keras.Model built from keras.Input) to expose feature maps; received "
            f"{type(encoder).__name__} {getattr(encoder, 'name', '')!r} ({e}).") from e


def feature_maps(encoder, names, name=None):
    """A `keras.Model` images -> {name: feature map} sharing `encoder`'s layers.

    Args:
      encoder: a functional Keras model (every registered encoder but "hub:" ones).
      names: the maps to return (see the module docstring); a list of strings.
      name: the model's name (default: the encoder's, suffixed "_feature_maps").
    """
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f"`names` must be a non-empty list of feature-map names; received "
                         f"names={names!r}.")
    inputs, output = _functional(encoder)
    aliases = stage_names(encoder)
    layers = {layer.name: layer for layer in encoder.layers}
    outputs = {}
    for key in names:
        if key == OUTPUT:
            outputs[key] = output
        elif key in aliases or key in layers:
            outputs[key] = layers[aliases.get(key, key)].output
        else:
            valid = available(encoder)
            shown = ", ".join(repr(v) for v in valid[:40])
            more = f" (and {len(valid) - 40} more layer names)" if len(valid) > 40 else ""
            raise ValueError(
                f"`names` holds {key!r}, which encoder {encoder.name!r} does not have. "
                f"Valid feature-map names: {shown}{more}.")
    return keras.Model(inputs, outputs, name=name or f"{encoder.name}_feature_maps")
