"""The blocks of the package's encoders, numbered as SimCLR's `fine_tune_after_block`.

SimCLR's TF2 code fine-tunes "after block k": block 0 is the stem, blocks 1..4 the
ResNet stages; k = -1 trains everything, k = 4 only the new head. Here a ResNet's
blocks are its stem (layers `stem_*`) and its stages (`stage<s>_*`); a `small_cnn`'s
are its conv-BN-ReLU blocks (`conv<i>`, `bn<i>`, `relu<i>`: block i - 1, the first
one being its stem) and its final dense layer. Other encoders (TF Hub, adapted
models) have no blocks: they are fine-tuned whole.
"""

import re

_RESNET = re.compile(r"^(stem)_|^stage(\d+)_")
_SMALL = re.compile(r"^(?:conv|bn|relu)(\d+)$")


def encoder_blocks(encoder):
    """The encoder's blocks in order, each a list of its layers; None if it has none."""
    layers = [layer for layer in encoder.layers if layer.weights]
    numbered = {}
    for layer in layers:
        resnet, small = _RESNET.match(layer.name), _SMALL.match(layer.name)
        if resnet:
            index = 0 if resnet.group(1) else int(resnet.group(2))
        elif small:
            index = int(small.group(1)) - 1
        elif layer.name == "dense" and any(_SMALL.match(other.name) for other in layers):
            index = None  # small_cnn's last block, numbered after the conv blocks below
        else:
            return None
        numbered.setdefault(index, []).append(layer)
    if not numbered:
        return None
    blocks = [numbered[i] for i in sorted(k for k in numbered if k is not None)]
    if None in numbered:
        blocks.append(numbered[None])
    return blocks


def freeze_through(encoder, block):
    """Sets every layer of blocks 0..`block` non-trainable (frozen BatchNorm runs in
    inference mode, as Keras' fine-tuning guide has it); `block` = -1 freezes nothing.
    Raises ValueError naming `fine_tune_after_block` when `block` is beyond the blocks."""
    if isinstance(block, bool) or not isinstance(block, int) or block < -1:
        raise ValueError(f"`fine_tune_after_block` must be an integer >= -1; received "
                         f"fine_tune_after_block={block!r}.")
    if block == -1:
        return encoder
    blocks = encoder_blocks(encoder)
    if blocks is None:
        raise ValueError(
            f"`fine_tune_after_block` must be -1 (train the whole encoder) for encoder "
            f"{encoder.name!r}, which has no numbered blocks; received {block}.")
    if block >= len(blocks):
        raise ValueError(
            f"`fine_tune_after_block` must be in [-1, {len(blocks) - 1}] for encoder "
            f"{encoder.name!r} (block 0 is its stem, {len(blocks) - 1} its last block: "
            f"{len(blocks) - 1} trains the new head only); received {block}.")
    for layers in blocks[:block + 1]:
        for layer in layers:
            layer.trainable = False
    return encoder
