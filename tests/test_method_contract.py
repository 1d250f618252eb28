"""The contract every registered method keeps, parametrized over `methods.METHODS`.

A new method joins with one entry in SPECS (its tiny constructor arguments and what it
needs of a batch), not a copy of these tests; so does a setting of a method that is a method
in its own right (the framework's CPC and YADIM), as "method:setting". Checked here for each: `fit`, a `.keras`
round trip that restores every variable (teacher, queues, prototypes, proxies) bit for
bit and trains on identically, and bad input refused with a message naming it (too few
views, missing labels, non-finite images). The method contract's other parts run where
they need their own processes, and are held to the same list here: the 1/2/4-replica
equality (tests/_replica_steps.py) and a 10/10 kill-and-resume campaign recorded in
BENCHMARKS.md (tools/preemption_trials.py).
"""

import functools
import pathlib

import keras
import numpy as np
import pytest
from keras import ops

from supcon_tf import encoders, losses, methods
from supcon_tf.heads import ProjectionHead
from tolerance import assert_close

ROOT = pathlib.Path(__file__).resolve().parent.parent
BATCH, SIZE = 8, 8

# name: (constructor kwargs besides encoder/head, head kwargs, views per sample)
# "method:setting": a setting of a registered method (its name before the colon).
SPECS = {
    "supcon": (dict(), dict(hidden_dims=(8,), output_dim=4), 2),
    "simclr": (dict(), dict(hidden_dims=(8,), output_dim=4), 2),
    "moco": (dict(queue_size=16, momentum=0.9), dict(hidden_dims=(8,), output_dim=4), 2),
    "supcon_moco": (dict(queue_size=16, symmetric=True), dict(hidden_dims=(8,), output_dim=4),
                    2),
    "byol": (dict(predictor_hidden_dims=(8,)),  # total_steps: taken from fit.
             dict(hidden_dims=(8,), output_dim=4, normalize=False), 2),
    "metric": (dict(loss=losses.ProxyAnchorLoss(4, lr_multiplier=10.0)),
               dict(hidden_dims=(8,), output_dim=4), 1),
    "simsiam": (dict(predictor_dim=2),
                dict(hidden_dims=(8,), output_dim=8, output_batch_norm=True, normalize=False),
                2),
    "swav": (dict(num_prototypes=5, queue_size=BATCH), dict(hidden_dims=(8,), output_dim=4), 2),
    "barlow_twins": (dict(), dict(hidden_dims=(8,), output_dim=4, normalize=False), 2),
    "vicreg": (dict(), dict(hidden_dims=(8,), output_dim=4, normalize=False), 2),
    "nnclr": (dict(queue_size=12, predictor_hidden_dims=(8,)),  # 2 steps of 8: wraps.
              dict(hidden_dims=(8,), output_dim=4, normalize=False), 2),
    "dino": (dict(out_dim=6, freeze_last_layer_steps=1),  # total_steps: taken from fit.
             dict(hidden_dims=(8,), output_dim=4, use_batch_norm=False, activation="gelu"), 3),
    # A memory bank of 3 batches (one row per sample), 5 noise rows; the bank's Z from step 1.
    "instdisc": (dict(bank_size=3 * BATCH, num_noise=5), dict(hidden_dims=(8,), output_dim=4),
                 1),
    # AMDIM's setting of the framework: 1-5, 1-7, 5-5 over the small CNN's two blocks.
    "framework": (dict(loss=losses.NCELoss(tclip=20.0, score_penalty=5e-2),
                       extraction="amdim", similarity="scaled_dot",
                       extraction_kwargs=dict(maps={"r1": "output", "r5": "block2",
                                                    "r7": "block1"})),
                  dict(hidden_dims=(8,), output_dim=4, normalize=False), 2),
    # CPC v2 (`ENCODERS` below: a 3 x 3 grid of 4 x 4 patches): contexts of
    # the rows above predict the patches 1 row below, by dot products.
    "framework:cpc": (dict(loss=losses.NCELoss(), extraction="cpc", similarity="dot",
                           extraction_kwargs=dict(steps=1,
                                                  context=dict(width=8, num_blocks=1))),
                      dict(hidden_dims=(), output_dim=4, use_batch_norm=False,
                           normalize=False), 1),
    # YADIM: every location of one view's last feature map against the other's, dot, NCE.
    "framework:yadim": (dict(loss=losses.NCELoss(), extraction="amdim", similarity="dot",
                             extraction_kwargs=dict(maps={"last": "block2"},
                                                    comparisons=("last-last",),
                                                    source_location="all")),
                        dict(hidden_dims=(8,), output_dim=4, normalize=False), 2),
    # Image-text pairs (0 views: images and captions, see `batches`); SigLIP's loss and bias.
    "clip": (dict(loss="siglip", text_encoder=dict(vocab_size=8, context_length=4, width=8,
                                                   num_layers=1, num_heads=2)),
             dict(hidden_dims=(), output_dim=4), 0),
}


# Settings whose encoder is not the small CNN on whole images. (Without per-patch
# augmentation: a `.keras` file does not hold an augmenter's random state, so the restored
# model would draw other patches; checkpoints, which hold `model.variables`, do.)
ENCODERS = {"framework:cpc": dict(name="patches", encoder="small_cnn",
                                  encoder_kwargs=dict(widths=(4, 8), dim=8), patch_size=4,
                                  overlap=2, augmentation=None)}


def method_of(name):
    """The registered method of a SPECS name ("framework" of "framework:cpc")."""
    return name.split(":")[0]


def test_every_registered_method_has_a_spec():
    assert sorted({method_of(name) for name in SPECS}) == sorted(methods.METHODS.names())


def build(name):
    kwargs, head, _ = SPECS[name]
    encoder = dict(ENCODERS.get(name, dict(name="small_cnn", widths=(4, 8), dim=8)))
    encoder = encoders.get(encoder.pop("name"), input_shape=(SIZE, SIZE, 1), **encoder)
    model = methods.get(method_of(name), encoder=encoder, head=ProjectionHead(**head),
                        **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    return model


def batches(name, steps=3, seed=0):
    num_views = SPECS[name][2]
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(4), BATCH // 4 * steps)
    if num_views == 0:  # Images and captions naming their class: <start> class <end>.
        images = rng.random((BATCH * steps, SIZE, SIZE, 1)).astype("float32")
        tokens = np.stack([np.full_like(labels, 2), labels + 4, np.full_like(labels, 3),
                           np.zeros_like(labels)], 1).astype("int32")
        return {"images": images + labels[:, None, None, None] / 8, "tokens": tokens}, labels
    views = rng.random((BATCH * steps, num_views, SIZE, SIZE, 1)).astype("float32")
    if getattr(methods.METHODS.lookup(method_of(name)), "sample_index", False):  # Its bank row.
        return (views + labels[:, None, None, None, None] / 8,
                dict(labels=labels, index=np.arange(len(labels))))
    return views + labels[:, None, None, None, None] / 8, labels


def take(x, rows):
    """Rows of a batch's inputs (views, or a dict of images and tokens)."""
    return keras.tree.map_structure(lambda a: a[rows], x)


def with_nan(x):
    """A copy of a batch's inputs with one NaN pixel."""
    x = keras.tree.map_structure(np.copy, x)
    images = x["images"] if isinstance(x, dict) else x
    images[(3,) + (0,) * (images.ndim - 1)] = np.nan
    return x


@functools.lru_cache(maxsize=None)
def fitted(name):
    """The method trained for two steps by `fit`, and its history (one fit per method, shared
    by the tests below)."""
    keras.utils.set_random_seed(0)
    model = build(name)
    views, labels = batches(name)
    history = model.fit(take(views, slice(2 * BATCH)), take(labels, slice(2 * BATCH)),
                        batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return model, history.history


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fit_trains_with_a_finite_loss(name):
    _, history = fitted(name)
    assert len(history["loss"]) == 1 and np.all(np.isfinite(history["loss"]))
    assert history["loss"][0] != 0.0  # A loss that is 0 by construction trains nothing.


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fit_then_keras_round_trip_restores_every_variable(name, tmp_path):
    model, _ = fitted(name)
    views, labels = batches(name)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model)
    assert restored.method_loss.get_config() == model.method_loss.get_config()
    assert len(restored.weights) == len(model.weights)
    for saved, loaded in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(loaded), ops.convert_to_numpy(saved),
                                      err_msg=saved.path)
    # Training goes on from the same state: the next step's loss and weights agree.
    x, y = take(views, slice(2 * BATCH, None)), take(labels, slice(2 * BATCH, None))
    restored.compile(optimizer=keras.optimizers.SGD(0.05))
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    got = restored.train_on_batch(x, y, return_dict=True)["loss"]
    want = model.train_on_batch(x, y, return_dict=True)["loss"]
    assert_close(got, want, terms=BATCH * 2 * (16 + BATCH), magnitude=max(1.0, abs(want)))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_bad_batches_are_refused_with_their_name(name):
    model = build(name)
    views, labels = batches(name, steps=1)
    if model.min_views > 1:
        with pytest.raises(ValueError, match=r"at least \d+ view"):
            model.fit(views[:, :model.min_views - 1], labels, batch_size=BATCH, verbose=0)
    if model.requires_labels:
        with pytest.raises(ValueError, match="labels"):
            model.fit(views, batch_size=BATCH, verbose=0)
    with pytest.raises(ValueError, match="must be finite"):
        model.fit(with_nan(views), labels, batch_size=BATCH, verbose=0)


# Methods whose forward pass advances state every step (a queue, a teacher, a step count).
STEP_STATE = {"moco", "supcon_moco", "byol", "swav", "nnclr", "dino", "instdisc"}


def test_gradient_accumulation_is_refused_where_state_advances_every_step():
    # A queue or teacher would advance once per micro-batch, not once per optimizer step;
    # `compile` reads the class's `step_state`, so the classes say which they are, and a
    # queue method, a teacher method and one without state are compiled.
    for name in SPECS:
        has_state = methods.METHODS.lookup(method_of(name)).step_state is not None
        assert has_state == (name in STEP_STATE), name
    for name in ("nnclr", "byol", "simclr"):
        model = build(name)
        optimizer = keras.optimizers.SGD(0.05, gradient_accumulation_steps=2)
        if name not in STEP_STATE:
            model.compile(optimizer=optimizer)
            continue
        with pytest.raises(ValueError, match="gradient_accumulation_steps.*received 2"):
            model.compile(optimizer=optimizer)
        with pytest.raises(ValueError, match="gradient_accumulation_steps"):  # Loss scaling.
            model.compile(optimizer=keras.optimizers.LossScaleOptimizer(optimizer))


def test_every_method_is_in_the_replica_equality_run():
    source = (ROOT / "tests" / "_replica_steps.py").read_text()
    cases = source[source.index('sys.argv[3:] or ['):]
    for name in SPECS:  # A setting's case is named for the setting.
        case = name.split(":")[-1]
        assert f'"{case}"' in cases, f"{case} is not a case of tests/_replica_steps.py"


# Methods whose 10-trial kill-and-resume campaign is recorded in BENCHMARKS.md, by the
# config it ran; a method joins when its campaign is 10/10.
CAMPAIGNS = {"supcon": "digits_supcon", "simclr": "digits_simclr", "moco": "digits_moco",
             "byol": "digits_byol", "swav": "digits_swav", "metric": "digits_proxyanchor",
             "instdisc": "digits_instdisc",
             "barlow_twins": "digits_barlow_twins", "vicreg": "digits_vicreg",
             "nnclr": "digits_nnclr",
             "dino": "digits_dino",
             "framework:yadim": "digits_yadim",
             "framework": "digits_amdim",
             "framework:cpc": "digits_cpc"}


def test_recorded_campaigns_are_ten_of_ten():
    text = (ROOT / "BENCHMARKS.md").read_text()
    for name, config in CAMPAIGNS.items():
        heading = f"### Trials of configs/{config}.py"
        assert heading in text, f"{name}: no campaign recorded ({heading})"
        section = text[text.index(heading):].split("\n### ")[0]
        assert "**10/10 trials equal**" in section, f"{name}: campaign is not 10/10"
