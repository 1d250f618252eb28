"""Multi-crop view groups, SimSiam and SwAV through `fit` (TensorFlow and JAX), the
MultiCrop recipe on the host and in the step, `.keras` round trips and bad input."""

import keras
import numpy as np
import pytest
from keras import ops

from loss_reference import supcon_reference
from supcon_tf import encoders, methods, views
from supcon_tf.heads import ProjectionHead
from supcon_tf.losses import SupConLoss
from tolerance import assert_close


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)


def any_size_encoder():
    return encoders.get("small_cnn", input_shape=(None, None, 1), widths=(8, 16), dim=16)


def groups(n=32, seed=0):
    """(global [n, 2, 8, 8, 1], local [n, 3, 4, 4, 1]) and labels."""
    rng = np.random.default_rng(seed)
    return ((rng.random((n, 2, 8, 8, 1)).astype("float32"),
             rng.random((n, 3, 4, 4, 1)).astype("float32")), rng.integers(0, 4, n))


def build(name, **kwargs):
    heads = {"simsiam": ProjectionHead((16, 16), 16, output_batch_norm=True, normalize=False),
             "swav": ProjectionHead((16,), 8)}
    extra = {"swav": dict(num_prototypes=6), "simsiam": dict(predictor_dim=4)}.get(name, {})
    return methods.get(name, encoder=any_size_encoder(),
                       head=heads.get(name, ProjectionHead(output_dim=8)), **extra, **kwargs)


def test_view_groups_encode_once_per_resolution_and_concatenate():
    model = build("supcon")
    (g, l), _ = groups(n=4)
    out = model((g, l), training=False)
    assert tuple(out["representation"].shape) == (4, 5, 16)
    assert tuple(out["projection"].shape) == (4, 5, 8)
    # The same as encoding each group on its own: global views first, then local.
    assert_close(ops.convert_to_numpy(out["representation"][:, 2:]),
                 ops.convert_to_numpy(model(l, training=False)["representation"]), terms=16)
    assert_close(ops.convert_to_numpy(out["representation"][:, :2]),
                 ops.convert_to_numpy(model(g, training=False)["representation"]), terms=16)


def test_supcon_on_view_groups_takes_every_view_as_positive():
    model = build("supcon", loss=SupConLoss(temperature=0.5))
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    (g, l), labels = groups(n=8)
    logs = model.test_on_batch((g, l), labels, return_dict=True)
    feats = ops.convert_to_numpy(model((g, l), training=False)["projection"])
    assert feats.shape == (8, 5, 8)
    expected = supcon_reference(feats, labels, temperature=0.5).mean()
    assert_close(logs["loss"], expected, terms=8 * 5 * 8 * 5)


@pytest.mark.parametrize("name", ["supcon", "simclr", "simsiam", "swav"])
def test_fit_on_view_groups(name):
    model = build(name)
    model.compile(optimizer="adam")
    x, labels = groups(n=16)
    history = model.fit(x, labels, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    if name == "simsiam":
        assert 0 < history.history["collapse_std"][0] <= 1
    single = model.fit(x[0], labels, batch_size=16, epochs=1, verbose=0)  # one tensor
    assert np.isfinite(single.history["loss"]).all()


@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="eager op by op is slow on JAX; the step test covers it there")
def test_multicrop_recipe_shapes_seeds_and_serialization():
    crop = views.MultiCrop((8, 8), (4, 4), num_global=2, num_local=3, global_scale=(0.5, 1.0),
                           local_scale=(0.2, 0.5), policy="digits", seed=3)
    images = (np.random.default_rng(0).random((5, 8, 8, 1)) * 255).astype("uint8")
    g, l = crop(images)
    assert tuple(g.shape) == (5, 2, 8, 8, 1) and tuple(l.shape) == (5, 3, 4, 4, 1)
    assert crop.compute_output_shape((None, 8, 8, 1)) == ((None, 2, 8, 8, 1),
                                                          (None, 3, 4, 4, 1))
    one = crop(images[0])
    assert tuple(one[1].shape) == (3, 4, 4, 1)
    g = ops.convert_to_numpy(g)
    assert 0 <= g.min() and g.max() <= 1 and not np.allclose(g[:, 0], g[:, 1])
    restored = views.MultiCrop.from_config(crop.get_config())
    assert restored.get_config() == crop.get_config()
    assert len(views.MultiCrop((8, 8), num_local=0, policy="digits")(images)) == 1


def test_fit_with_multicrop_inside_the_step():
    crop = views.MultiCrop((8, 8), (4, 4), 2, 2, (0.5, 1.0), (0.2, 0.5), policy="digits",
                           seed=0)
    model = methods.SwAV(any_size_encoder(), ProjectionHead((16,), 8), augmenter=crop,
                         num_prototypes=6)
    model.compile(optimizer="adam")
    images = np.random.default_rng(0).random((32, 8, 8, 1)).astype("float32")
    history = model.fit(images, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_multicrop_in_tf_data_and_supcon_on_multicrop_digits():
    pytest.importorskip("tensorflow")
    from supcon_tf import data

    train, _ = data.load("digits", split="train")
    crop = views.MultiCrop((8, 8), (4, 4), 2, 2, (0.35, 1.0), (0.1, 0.35), policy="digits",
                           seed=0)
    ds = data.make_pretrain_dataset(train.take(64), batch_size=16, augmenter=crop,
                                    shuffle_buffer=0, repeat=False)
    (g, l), y = ds.element_spec
    assert tuple(g.shape) == (16, 2, 8, 8, 1) and tuple(l.shape) == (16, 2, 4, 4, 1)
    model = build("supcon")
    model.compile(optimizer="adam")
    history = model.fit(ds, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]


def test_swav_prototypes_frozen_for_the_first_steps():
    model = build("swav", freeze_prototypes_steps=2)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x, labels = groups(n=16)
    model(x)
    start = ops.convert_to_numpy(model.prototypes.kernel)
    for step in range(2):
        model.train_on_batch(x, labels)
        np.testing.assert_array_equal(ops.convert_to_numpy(model.prototypes.kernel), start)
    model.train_on_batch(x, labels)
    assert np.abs(ops.convert_to_numpy(model.prototypes.kernel) - start).max() > 1e-6
    assert int(ops.convert_to_numpy(model.train_steps)) == 3


def test_swav_queue_holds_the_last_batch_and_joins_sinkhorn():
    from ssl_reference import swav_reference

    model = build("swav", queue_size=16)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    (a, _), _ = groups(n=16, seed=1)
    (b, _), _ = groups(n=16, seed=2)
    out_a = model(a, training=True)
    model.train_on_batch(a)
    for i, queue in enumerate(model.queues):  # Each global crop's normalized projections.
        z = ops.convert_to_numpy(out_a["projection"][:, i])
        assert_close(ops.convert_to_numpy(queue.values),
                     z / np.linalg.norm(z, axis=1, keepdims=True), terms=8)
    kernel = ops.convert_to_numpy(model.prototypes.kernel)
    kernel = kernel / np.linalg.norm(kernel, axis=0, keepdims=True)
    queued = np.stack([ops.convert_to_numpy(q.values) @ kernel for q in model.queues])
    scores = ops.convert_to_numpy(model(b, training=True)["scores"])
    logs = model.train_on_batch(b, return_dict=True)
    expected = swav_reference(scores, queue_scores=queued).mean()
    assert abs(expected - swav_reference(scores).mean()) > 1e-3  # The queue matters.
    assert_close(logs["loss"], expected, terms=20 * 3 * 48 * 6, magnitude=10.0)


@pytest.mark.parametrize("make, match", [
    (lambda: views.MultiCrop(global_scale=(0.0, 1.0)), "global_scale"),
    (lambda: views.MultiCrop(local_scale=(0.05, 1.2)), "local_scale"),
    (lambda: views.MultiCrop(local_scale=(0.3, 0.1)), "local_scale"),
    (lambda: views.MultiCrop(num_global=1), "num_global"),
    (lambda: views.MultiCrop(num_local=-1), "num_local"),
    (lambda: views.MultiCrop(policy_kwargs=dict(area_range=(0.1, 1))), "policy_kwargs"),
    (lambda: methods.SwAV(any_size_encoder(), num_prototypes=0), "num_prototypes"),
    (lambda: methods.SwAV(any_size_encoder(), freeze_prototypes_steps=-1),
     "freeze_prototypes_steps"),
    (lambda: methods.SimSiam(any_size_encoder(), predictor_dim=0), "predictor_dim"),
    (lambda: methods.SwAV(any_size_encoder(), queue_size=-1), "queue_size"),
])
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_view_groups_of_different_batch_sizes_raise():
    model = build("supcon")
    model.compile(optimizer="adam")
    (g, l), labels = groups(n=8)
    with pytest.raises(ValueError, match="same batch size"):
        model((g, l[:4]))
    with pytest.raises(ValueError, match="same batch size"):
        methods.view_groups((g, l[:4]))
    with pytest.raises(ValueError, match=r"views\[1\]"):
        methods.view_groups((g, l[:, 0]))
    with pytest.raises(ValueError, match="at least 2 view"):
        methods.view_groups((g[:, :1],), min_views=2)
