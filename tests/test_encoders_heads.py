"""Encoders (ResNet family, small CNN, adapters) and heads: shapes, options, serialization."""

import keras
import numpy as np
import pytest
from keras import ops

from supcon_tf import encoders
from supcon_tf.heads import LinearHead, ProjectionHead
from tolerance import assert_close


def count_layers(model, cls):
    return sum(isinstance(layer, cls) for layer in model.layers)


@pytest.mark.parametrize("depth,stem,size,dim", [
    (18, "cifar", 16, 64), (34, "imagenet", 32, 64), (50, "cifar", 16, 256)])
def test_resnet_shapes_and_stems(depth, stem, size, dim):
    model = encoders.get(f"resnet{depth}", stem=stem, width_multiplier=0.125,
                         input_shape=(size, size, 3))
    out = model(np.zeros((2, size, size, 3), "float32"))
    assert tuple(out.shape) == (2, dim)
    has_pool = count_layers(model, keras.layers.MaxPooling2D) == 1
    assert has_pool == (stem == "imagenet")
    first_conv = next(l for l in model.layers if isinstance(l, keras.layers.Conv2D))
    assert first_conv.kernel_size == ((7, 7) if stem == "imagenet" else (3, 3))


def test_resnet_block_counts_and_width():
    r50 = encoders.resnet(50, stem="imagenet", input_shape=(64, 64, 3))
    convs = count_layers(r50, keras.layers.Conv2D)
    assert convs == 1 + 3 * 16 + 4  # stem, 3 per bottleneck block, 4 projection shortcuts
    assert r50.output.shape[-1] == 2048
    assert 23_000_000 < r50.count_params() < 24_000_000  # ResNet-50 without the fc layer
    r18 = encoders.resnet(18, stem="cifar", width_multiplier=2, input_shape=(32, 32, 3))
    assert r18.output.shape[-1] == 1024


def test_batch_norm_follows_official_settings_and_sync_option():
    model = encoders.resnet(18, stem="cifar", width_multiplier=0.125, input_shape=(8, 8, 3),
                            sync_batch_norm=True)
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    on_tf = keras.backend.backend() == "tensorflow"  # JAX steps already see the global batch
    assert bns and all(b.momentum == 0.9 and b.epsilon == 1e-5 and b.synchronized == on_tf
                       for b in bns)


@pytest.mark.parametrize("build", [
    lambda: encoders.resnet(18, stem="cifar", width_multiplier=0.125, input_shape=(8, 8, 3),
                            norm="layer"),
    lambda: encoders.small_cnn(input_shape=(8, 8, 3), widths=(4, 8), dim=6, norm="layer")])
def test_layer_norm_keeps_each_sample_to_itself(build):
    """CPC v2's encoder: no BatchNorm, so in training a sample's features do not depend on
    the rest of the batch; the layers keep their names (feature maps, block freezing)."""
    model = build()
    assert not [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    norms = [l for l in model.layers if isinstance(l, keras.layers.GroupNormalization)]
    assert norms and all(l.groups == 1 and "bn" in l.name for l in norms)
    images = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    alone = ops.convert_to_numpy(model(images[:1], training=True))
    in_batch = ops.convert_to_numpy(model(images, training=True))[:1]
    assert_close(alone, in_batch, dtype="float32", terms=8 * 8 * 8)
    clone = keras.Model.from_config(model.get_config())
    assert [type(l) for l in clone.layers] == [type(l) for l in model.layers]


@pytest.mark.parametrize("kwargs,match", [
    (dict(depth=19), "depth"), (dict(stem="mnist"), "stem"), (dict(width_multiplier=0), "width"),
    (dict(norm="instance"), "norm.*batch.*layer"),
    (dict(norm="layer", sync_batch_norm=True), "sync_batch_norm")])
def test_resnet_bad_arguments(kwargs, match):
    args = dict(depth=18, stem="cifar", input_shape=(8, 8, 3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        encoders.resnet(**args)


def test_unknown_encoder_lists_valid_names():
    with pytest.raises(ValueError, match="resnet18.*resnet50"):
        encoders.get("resnet51")


def test_any_keras_model_is_an_encoder():
    inputs = keras.Input((8, 8, 3))
    fmap = keras.layers.Conv2D(5, 3)(inputs)
    enc = encoders.get(keras.Model(inputs, fmap))
    assert tuple(enc(np.zeros((2, 8, 8, 3), "float32")).shape) == (2, 5)
    vec = keras.Model(inputs, keras.layers.Flatten()(inputs))
    assert encoders.get(vec) is vec
    with pytest.raises(ValueError, match="encoder"):
        encoders.as_encoder("resnet18")


def test_feature_maps_of_the_small_cnn_and_any_functional_model():
    images = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4, 8), dim=8)
    maps = encoders.feature_maps(encoder, ["block1", "block2", "output"])(images)
    assert_close(ops.convert_to_numpy(maps["output"]), ops.convert_to_numpy(encoder(images)))
    block1 = keras.Model(encoder.input, encoder.get_layer("relu1").output)(images)
    assert_close(ops.convert_to_numpy(maps["block1"]), ops.convert_to_numpy(block1))
    assert tuple(maps["block2"].shape) == (2, 4, 4, 8)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(3, 3, name="mine")(inputs)
    model = keras.Model(inputs, keras.layers.Flatten()(hidden))
    assert tuple(encoders.feature_maps(model, ["mine"])(images)["mine"].shape) == (2, 6, 6, 3)
    with pytest.raises(ValueError, match=r"`names` holds 'stage9'.*'block1', 'block2'"):
        encoders.feature_maps(encoder, ["stage9"])
    with pytest.raises(ValueError, match="functional Keras model"):
        encoders.feature_maps(keras.layers.Dense(3), ["output"])


def test_projection_head_defaults_normalized_and_configurable():
    head = ProjectionHead()
    out = ops.convert_to_numpy(head(np.random.rand(4, 32).astype("float32"), training=True))
    assert out.shape == (4, 128)
    assert_close(np.linalg.norm(out, axis=1), 1.0, dtype="float32", terms=128)  # norm over 128
    assert head.hidden[0][0].units == 32 and head.hidden[0][1].momentum == 0.9
    deep = ProjectionHead(hidden_dims=[16, 8], output_dim=4, use_batch_norm=False, normalize=False)
    deep(np.zeros((2, 6), "float32"))
    assert [d.units for d, _ in deep.hidden] == [16, 8] and deep.hidden[0][1] is None
    with pytest.raises(ValueError, match="output_dim"):
        ProjectionHead(output_dim=0)


def test_linear_head_stop_gradient():
    head = LinearHead(3, stop_gradient=True)
    assert tuple(head(np.zeros((2, 5), "float32")).shape) == (2, 3)
    with pytest.raises(ValueError, match="num_classes"):
        LinearHead(0)


@pytest.mark.parametrize("layer", [ProjectionHead(hidden_dims=[8], output_dim=4),
                                   LinearHead(3, stop_gradient=True)])
def test_heads_serialize(layer):
    x = np.random.rand(2, 6).astype("float32")
    layer(x)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    restored(x)
    restored.set_weights(layer.get_weights())
    # float32 dense layers over at most 8 inputs, after the 6 of the input.
    assert_close(ops.convert_to_numpy(restored(x)), ops.convert_to_numpy(layer(x)),
                 dtype="float32", terms=6 + 8)
