"""CPC's pieces: the patch grid (values against NumPy slicing, errors naming the parameter),
colour dropping, the row-causal context network and the patch encoder."""

import keras
import numpy as np
import pytest
from keras import ops

from supcon_tf import encoders, heads, views
from tolerance import assert_close

RNG = np.random.default_rng(0)


def np_(x):
    return ops.convert_to_numpy(x)


def test_cut_patches_equals_numpy_slices_row_major():
    images = RNG.random((2, 12, 8, 3)).astype("float32")
    assert views.patch_grid((12, 8), 4, 2) == (5, 3)
    patches = np_(views.cut_patches(images, 4, 2))
    assert patches.shape == (2, 5, 3, 4, 4, 3)
    for r in range(5):
        for c in range(3):
            np.testing.assert_array_equal(patches[:, r, c],
                                          images[:, 2 * r:2 * r + 4, 2 * c:2 * c + 4])
    # No overlap: the patches tile the image.
    assert views.patch_grid((8, 8), 4, 0) == (2, 2)


@pytest.mark.parametrize("size,patch,overlap,match", [
    ((9, 8), 4, 2, r"`patch_size`=4 with `overlap`=2 .* height of 9 .*\[4, 6, 8\]"),
    ((8, 7), 4, 2, r"width of 7"),
    ((8, 8), 10, 2, r"`patch_size`=10 .* height of 8 .*none"),
    ((8, 8), 4, 4, r"`overlap` must be smaller than `patch_size`"),
    ((8, 8), 8, 4, r"grid of 1x1 patches .* at least 2 rows"),
    ((8, 8), 0, 0, r"`patch_size` must be an integer >= 1"),
])
def test_a_grid_that_does_not_fit_names_the_parameter(size, patch, overlap, match):
    with pytest.raises(ValueError, match=match):
        views.patch_grid(size, patch, overlap)


def test_patch_encoder_refuses_a_grid_that_does_not_fit_the_images():
    with pytest.raises(ValueError, match=r"`patch_size`=4 .* height of 9"):
        encoders.get("patches", input_shape=(9, 8, 1), encoder="small_cnn", patch_size=4,
                     overlap=2)
    with pytest.raises(ValueError, match=r"`encoder_kwargs` holds \['width'\]"):
        encoders.get("patches", input_shape=(8, 8, 1), encoder="small_cnn",
                     encoder_kwargs=dict(width=3), patch_size=4, overlap=2)


def test_color_drop_keeps_one_channel_per_image():
    images = RNG.random((64, 3, 3, 3)).astype("float32") + 0.1
    out = np_(views.ColorDrop(p=1.0, seed=0)(images))
    kept = np.abs(out).sum(axis=(1, 2)) > 0  # [n, 3]
    assert np.all(kept.sum(axis=1) == 1)
    assert set(np.argmax(kept, axis=1)) == {0, 1, 2}  # Each channel is kept by some image.
    np.testing.assert_array_equal(out * kept[:, None, None], images * kept[:, None, None])
    np.testing.assert_array_equal(np_(views.ColorDrop(p=0.0)(images)), images)
    np.testing.assert_array_equal(np_(views.ColorDrop(p=1.0)(images, training=False)), images)
    gray = images[..., :1]
    np.testing.assert_array_equal(np_(views.ColorDrop(p=1.0)(gray)), gray)  # 1 channel


def test_context_network_is_causal_in_the_rows():
    net = heads.ContextNetwork(width=8, num_blocks=2, kernel_size=(2, 3))
    z = RNG.random((2, 5, 3, 6)).astype("float32")
    base = np_(net(z))
    assert base.shape == (2, 5, 3, 8)
    for row in range(5):
        moved = z.copy()
        moved[:, row] += 1.0
        diff = np.abs(np_(net(moved)) - base).max(axis=(0, 2, 3))
        np.testing.assert_array_equal(diff[:row], 0.0)  # Rows above never see it.
        assert diff[row] > 0  # Its own row does (predictions start one row below).
    clone = heads.ContextNetwork.from_config(net.get_config())
    clone.build(z.shape)
    clone.set_weights(net.get_weights())
    np.testing.assert_array_equal(np_(clone(z)), base)
    with pytest.raises(ValueError, match=r"`kernel_size\[1\]` must be odd"):
        heads.ContextNetwork(kernel_size=(2, 2))


def test_patch_encoder_is_the_mean_of_the_encoder_over_the_grid(tmp_path):
    keras.utils.set_random_seed(0)
    model = encoders.get("patches", input_shape=(8, 8, 1), encoder="small_cnn",
                         encoder_kwargs=dict(widths=(4, 8), dim=8), patch_size=4, overlap=2,
                         seed=1)
    images = RNG.random((3, 8, 8, 1)).astype("float32")
    inner = model.get_layer("small_cnn")
    patches = np.stack([images[:, 2 * r:2 * r + 4, 2 * c:2 * c + 4]
                        for r in range(3) for c in range(3)], 1)
    features = np_(inner(patches.reshape(-1, 4, 4, 1))).reshape(3, 3, 3, 8)
    assert_close(np_(model(images)), features.mean(axis=(1, 2)), terms=4 * 4 * 9)
    grid = encoders.feature_maps(model, [encoders.patches.GRID])(images)
    assert_close(np_(grid[encoders.patches.GRID]), features, terms=4 * 4 * 9)
    # Training draws each patch's own augmentation (crop, flip; colour drop on RGB).
    assert not np.allclose(np_(model(images, training=True)), np_(model(images)))
    path = str(tmp_path / "patches.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(np_(restored(images)), np_(model(images)))
