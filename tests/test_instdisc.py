"""InstDisc the method: its first-batch Z and bank update against the float64 NumPy statement
(tests/ssl_reference.py), the per-sample Z, the bank kNN, the pipeline's sample index, bad
input. The loss alone (TensorFlow and JAX): tests/test_instdisc_loss.py. The `.keras` round
trip and the bad-batch checks are the method contract's (tests/test_method_contract.py), 1/2/4
replicas tests/_replica_steps.py.
"""

import keras
import numpy as np
import pytest
from keras import ops

from ssl_reference import instdisc_reference
from supcon_tf import encoders, methods
from supcon_tf.heads import ProjectionHead
from tolerance import assert_close

RNG = np.random.default_rng(0)
BANK, BATCH, NOISE = 16, 8, 5


def _model(normalizer="first_batch", **kwargs):
    keras.utils.set_random_seed(0)
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4, 8), dim=8)
    model = methods.InstDisc(encoder, ProjectionHead(hidden_dims=(), output_dim=4),
                             bank_size=BANK, num_noise=NOISE, normalizer=normalizer, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    model(np.zeros((1, 1, 8, 8, 1), "float32"))
    return model


def _data():
    labels = np.arange(BANK) % 4
    views = RNG.random((BANK, 1, 8, 8, 1)).astype("float32") + labels[:, None, None, None,
                                                                      None] / 4
    return views, dict(labels=labels, index=np.arange(BANK)[::-1].copy())


def test_first_step_fixes_z_and_moves_the_bank_rows_of_the_batch():
    model = _model()
    views, y = _data()
    index = y["index"][:BATCH]
    bank = np.array(model.bank.values)
    noise = bank[ops.convert_to_numpy(model.bank.draw(index, NOISE))]  # (seed, step 0)
    f = ops.convert_to_numpy(model(views[:BATCH], training=True)["projection"][:, 0])
    scores = np.concatenate([np.sum(f * bank[index], -1)[:, None],
                             np.einsum("bd,bmd->bm", f, noise)], 1)
    z = BANK * np.mean(np.exp(scores.astype(np.float64) / 0.07))  # The released code's Z.
    loss = model.train_on_batch(views[:BATCH], {k: v[:BATCH] for k, v in y.items()})
    want, _ = instdisc_reference(f, bank[index], noise, BANK, 0.07, 30.0, z)
    assert_close(loss, want.mean(), terms=BATCH * NOISE * 4, magnitude=want.max())
    assert_close(float(model.bank.normalizer), z, terms=BATCH * (NOISE + 1), magnitude=z)
    moved = 0.5 * bank[index] + 0.5 * f
    moved /= np.linalg.norm(moved, axis=-1, keepdims=True)
    after = np.array(model.bank.values)
    assert_close(after[index], moved, terms=4)
    untouched = np.setdiff1d(np.arange(BANK), index)
    np.testing.assert_array_equal(after[untouched], bank[untouched])
    # The second step reads Z, does not estimate it again.
    model.train_on_batch(views[BATCH:], {k: v[BATCH:] for k, v in y.items()})
    assert float(model.bank.normalizer) == np.float32(float(model.bank.normalizer))
    assert_close(float(model.bank.normalizer), z, terms=BATCH * (NOISE + 1), magnitude=z)
    assert int(model.bank.step) == 2


def test_per_sample_normalizer_trains_without_storing_z():
    model = _model("per_sample")
    views, y = _data()
    history = model.fit(views, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert float(model.bank.normalizer) == -1.0
    with pytest.raises(ValueError, match="normalizer"):
        _model("paper")


def test_index_beyond_the_bank_or_missing_is_refused_by_name():
    model = _model()
    views, y = _data()
    with pytest.raises(ValueError, match=r"y\['index'\].*bank_size=16.*\[1, 16\]"):
        model.fit(views, dict(y, index=y["index"] + 1), batch_size=BATCH, verbose=0)
    with pytest.raises(ValueError, match="`index`.*bank_size=16"):
        model.bank.rows(np.array([3, 16]))
    with pytest.raises(ValueError, match="'index'"):
        model.fit(views, y["labels"], batch_size=BATCH, verbose=0)
    with pytest.raises(ValueError, match="bank_size"):
        methods.InstDisc(model.encoder, bank_size=None)


def test_bank_size_is_checked_against_the_training_split():
    from supcon_tf.cli import build
    from supcon_tf.cli.errors import UsageError

    config = dict(eval={}, pretrain=dict(batch_size=8, samples_per_class=0),
                  views=dict(num_views=1), method="instdisc")
    model = _model()
    build.check_against_data(config, model, BANK)
    with pytest.raises(UsageError, match=r"'method_kwargs.bank_size' \(16\).*17 images"):
        build.check_against_data(config, model, BANK + 1)


def test_bank_knn_is_the_weighted_knn_against_the_bank_rows():
    from supcon_tf.evaluation import knn_accuracy
    from supcon_tf.methods.instdisc import _Projector

    model = _model()
    views, y = _data()
    model.fit(views, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    images, labels = views[:, 0], y["labels"]
    bank_labels = np.empty(BANK, np.int64)
    bank_labels[y["index"]] = labels  # Row i holds sample i's label.
    queries = ops.convert_to_numpy(_Projector(model)(images))
    want = knn_accuracy(queries, labels, np.array(model.bank.values), bank_labels, k=5,
                        temperature=0.07)
    assert model.bank_knn_top1((images, labels), bank_labels, k=5) == want
    assert model.evaluation_metrics((images, bank_labels), (images, labels)) == {
        "bank_knn_top1": knn_accuracy(queries, labels, np.array(model.bank.values),
                                      bank_labels, k=BANK, temperature=0.07)}
    with pytest.raises(ValueError, match="bank_labels"):
        model.bank_knn_top1((images, labels), bank_labels[:3])


def test_pipeline_carries_each_samples_position_in_every_epoch():
    import tensorflow as tf

    from supcon_tf import data

    n = 12
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None],
                             (n, 4, 4, 1)).copy()
    labels = (np.arange(n) * 7) % 3
    source = tf.data.Dataset.from_tensor_slices((images, labels))
    for seed in (1, 2):
        ds = data.make_pretrain_dataset(source, batch_size=4, augment_on="device",
                                        shuffle_buffer=n, seed=seed, repeat=False,
                                        sample_index=True)
        seen = []
        for x, y in ds.as_numpy_iterator():
            np.testing.assert_array_equal(x[:, 0, 0, 0], y["index"])
            np.testing.assert_array_equal(labels[y["index"]], y["labels"])
            assert y["index"].dtype == np.int32 and y["labels"].dtype == np.int32
            seen.extend(y["index"])
        assert sorted(seen) == list(range(n)) and seen != list(range(n))  # Shuffled.
