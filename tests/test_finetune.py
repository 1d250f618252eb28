"""The fine-tuning stage: its labelled subset, frozen blocks, kept head layers, the
equality with cross-entropy training, resuming after SIGKILL, and its bad input."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from _cli_runs import ROOT, cli_env, run_cli
from supcon_tf import data, encoders, methods
from supcon_tf.cli import build, session
from supcon_tf.cli import finetune as ft
from supcon_tf.cli.errors import UsageError
from supcon_tf.cli.training import epoch_seed
from supcon_tf.data.digits import split_indices
from supcon_tf.encoders.blocks import encoder_blocks, freeze_through
from supcon_tf.heads import FineTuneHead, ProjectionHead
from tolerance import assert_close

CONFIG_PATH = os.path.join(ROOT, "configs", "digits_supcon.py")
# Every run here: the digits smoke config, 1 pretraining epoch of 11 steps, a checkpoint
# every 4 steps, fine-tuning on all labels for 2 epochs of 11 steps.
BASE = {"pretrain__epochs": 1, "pretrain__batch_size": 128, "linear__epochs": 1,
        "eval__plots": False, "export__enabled": False, "checkpoint_every_steps": 4,
        "finetune__label_fraction": 1.0, "finetune__batch_size": 128,
        "finetune__epochs": 2, "finetune__learning_rate": 0.05}


def _config(**overrides):
    spec = importlib.util.spec_from_file_location("digits_supcon", CONFIG_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config("local")
    for path, value in {**BASE, **overrides}.items():
        *sections, key = path.split("__")
        holder = config
        for section in sections:
            if section not in holder:
                holder[section] = {}
            holder = holder[section]
        holder[key] = value
    return config


def _settings(workdir, mode, **overrides):
    return session.Settings(config=_config(**overrides), config_path=CONFIG_PATH,
                            config_given=True, workdir=str(workdir), mode=mode)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A pretrained tiny SupCon run's work directory (in-process)."""
    workdir = tmp_path_factory.mktemp("finetune") / "pretrained"
    session.prepare(_settings(workdir, "pretrain"), log=lambda _: None).execute()
    return workdir


def _copy(pretrained, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(pretrained, target)
    return target


# ------------------------------------------------------------------ the labelled subset


def test_subset_is_class_balanced_seeded_and_from_the_training_split():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    tenth = data.labelled_subset(labels, label_fraction=0.1, seed=3)
    assert np.bincount(labels[tenth]).tolist() == [10, 5, 3, 2]  # 10% of every class
    assert np.array_equal(tenth, data.labelled_subset(labels, 0.1, seed=3))
    assert not np.array_equal(tenth, data.labelled_subset(labels, 0.1, seed=4))
    one = data.labelled_subset(labels, label_fraction=0.01, seed=3)
    assert np.bincount(labels[one]).tolist() == [1, 1, 1, 1]  # at least one each
    assert np.array_equal(data.labelled_subset(labels, 1.0), np.arange(len(labels)))
    per = data.labelled_subset(labels, labels_per_class=20, seed=0)
    assert np.bincount(labels[per]).tolist() == [20] * 4 and len(set(per)) == 80
    with pytest.raises(ValueError, match="`labels_per_class` must be at most the 20 "
                                         "samples of the smallest class"):
        data.labelled_subset(labels, labels_per_class=21)
    for bad in (0.0, 1.5, True):
        with pytest.raises(ValueError, match="`label_fraction` must be a number in"):
            data.labelled_subset(labels, label_fraction=bad)
    # Indices of the training split: none of them is a test image of the digits split.
    train, test = split_indices()["train"], split_indices()["test"]
    train_labels = data.dataset_labels(data.load_digits("train")[0])
    chosen = train[data.labelled_subset(train_labels, 0.1, seed=0)]
    assert not set(chosen) & set(test) and len(chosen) == 142


def test_take_keeps_the_indices_in_order():
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((np.arange(10) * 10, np.arange(10)))
    kept = list(data.subsets.take(ds, [7, 2, 5], 10).as_numpy_iterator())
    assert [int(y) for _, y in kept] == [2, 5, 7] and [int(x) for x, _ in kept] == [20, 50, 70]


SUBSET_SCRIPT = textwrap.dedent("""
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, "tests")
    from test_finetune import _config
    from supcon_tf.cli import schema
    from supcon_tf.cli.stages import Run
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    run = Run(schema.resolve(_config(finetune__label_fraction=0.1, finetune__batch_size=32)),
              sys.argv[1], strategy, log=lambda _: None)
    print("INDICES", ",".join(map(str, run.finetuning().indices)))
""")


def test_subset_is_the_same_under_two_replicas(tmp_path):
    """The draw reads the unsharded labels on the host: 2 replicas pick the same images."""
    from supcon_tf.cli import schema
    from supcon_tf.cli.stages import Run
    import tensorflow as tf

    config = schema.resolve(_config(finetune__label_fraction=0.1, finetune__batch_size=32))
    one = Run(config, str(tmp_path / "one"), tf.distribute.get_strategy(),
              log=lambda _: None).finetuning().indices
    env = dict(cli_env(), KERAS_BACKEND="tensorflow")
    result = subprocess.run([sys.executable, "-c", SUBSET_SCRIPT, str(tmp_path / "two")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    two = [line for line in result.stdout.splitlines() if line.startswith("INDICES")][0]
    assert np.array_equal(one, np.array(two.split()[1].split(","), np.int64))
    assert len(one) == 142


# ------------------------------------------------------------- blocks and the kept head


def test_blocks_of_the_encoders_and_freezing():
    small = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=8)
    assert [[layer.name for layer in b] for b in encoder_blocks(small)] == [
        ["conv1", "bn1"], ["conv2", "bn2"], ["dense"]]
    freeze_through(small, 1)
    assert [layer.name for layer in small.layers if layer.weights and layer.trainable] == \
        ["dense"]
    resnet = encoders.get("resnet18", input_shape=(16, 16, 3), stem="cifar")
    blocks = encoder_blocks(resnet)
    assert len(blocks) == 5 and blocks[0][0].name == "stem_conv"
    assert {layer.name.split("_")[0] for layer in blocks[4]} == {"stage4"}
    with pytest.raises(ValueError, match=r"`fine_tune_after_block` must be in \[-1, 4\] for "
                                         "encoder 'resnet18_cifar'"):
        freeze_through(resnet, 5)
    hub_like = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="proj")])
    assert encoder_blocks(hub_like) is None
    freeze_through(hub_like, -1)
    with pytest.raises(ValueError, match="must be -1 .* no numbered blocks"):
        freeze_through(hub_like, 0)


def test_finetune_head_keeps_the_projection_layers(tmp_path):
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    projection = ProjectionHead(hidden_dims=(5, 7), output_dim=3)
    projection(x)
    head = FineTuneHead(3, hidden_dims=(5,))
    logits = head(x)
    head.copy_hidden(projection)
    dense, bn = projection.hidden[0]
    hidden = np.maximum(0.0, keras.ops.convert_to_numpy(bn(dense(x), training=False)))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in head.linear.dense.weights)
    assert_close(head(x), hidden @ kernel + bias, terms=5)
    assert logits.shape == (4, 3)
    model = keras.Sequential([keras.Input((6,)), head])
    model.save(tmp_path / "head.keras")
    loaded = keras.saving.load_model(tmp_path / "head.keras")
    assert_close(loaded(x), head(x), terms=5)


# ------------------------------------------------------------------ the stage in a run


def test_finetune_on_all_labels_equals_cross_entropy_from_the_same_weights(
        pretrained, tmp_path, monkeypatch):
    """fine_tune_after_block=-1, label_fraction=1.0: the stage trains exactly what a
    cross-entropy classifier on the pretrained encoder trains (same data, steps, seed)."""
    workdir = _copy(pretrained, tmp_path, "tuned")
    prepared = session.prepare(_settings(workdir, "finetune"), log=lambda _: None)
    try:
        run = prepared.run
        stage = run.finetuning()
        assert np.array_equal(stage.indices, np.arange(run.train_size))
        model, fit = stage.model()
        start = [keras.ops.convert_to_numpy(w) for w in model.weights]
        encoder = build.encoder(run.config, run.input_shape)
        encoder.set_weights(run.pretrained().encoder.get_weights())
        reference = methods.CrossEntropyClassifier(encoder, 10)
        reference.compile(optimizer=build.optimizer(run.config["finetune"],
                                                    fit.steps_per_epoch, "finetune"))
        reference(np.zeros((1, *run.input_shape), "float32"))
        reference.set_weights(start)  # The same new head too.
        epochs = run._epoch_data("finetune", "eval", {}, 1, "host")  # every image
        for epoch in range(fit.epochs):
            reference.fit(epochs(epoch, epoch_seed(fit.seed, epoch)), epochs=1, verbose=0,
                          shuffle=False)
        stage.train()
    finally:
        prepared.close()
    assert int(model.optimizer.iterations.numpy()) == 22
    trained = [keras.ops.convert_to_numpy(w) for w in model.weights]
    moved = max(float(np.abs(a - b).max()) for a, b in zip(trained, start))
    assert moved > 1e-3  # It trained.
    for got, want in zip(trained, reference.get_weights()):
        # 22 SGD steps of gradients that are means over 128 images of 16-wide layers.
        assert_close(got, want, terms=22 * 128 * 16)

    # A rerun reads the subset from labels.json (no new draw), and finds the stage done.
    with open(stage.path(ft.LABELS_FILE)) as f:
        record = json.load(f)
    assert record["indices"] == list(range(run.train_size)) and record["seed"] == 0
    monkeypatch.setattr(data, "labelled_subset", None)  # Calling it would fail.
    result = session.prepare(_settings(workdir, "finetune"), log=lambda _: None).execute()
    assert result["finetune"]["labels"] == 1437 and result["finetune"]["steps"] == 22


def test_finetune_with_an_augmentation_trains_on_images(pretrained, tmp_path):
    """The stage's augmented batches are images [b, H, W, C] like the linear stage's, not
    one-view stacks (tools/compare_methods.py fine-tunes with the digits augmentation)."""
    workdir = _copy(pretrained, tmp_path, "augmented")
    overrides = dict(finetune__label_fraction=0.1, finetune__batch_size=32,
                     finetune__epochs=1, finetune__augmentation="digits")
    prepared = session.prepare(_settings(workdir, "finetune", **overrides),
                               log=lambda _: None)
    try:
        images, _ = next(iter(prepared.run._epoch_data("finetune", "digits", {}, 1,
                                                        "host")(0, 0)))
        assert tuple(images.shape) == (32, *prepared.run.input_shape)
        result = prepared.execute()["finetune"]
    finally:
        prepared.close()
    assert result["steps"] == 4 and result["labels"] == 142
    assert 0.0 <= result["finetune_top1"] <= 1.0 and np.isfinite(result["test_loss"])


def test_finetune_resumes_after_sigkill(pretrained, tmp_path):
    """Killed at a step between checkpoints and rerun, the stage ends with the weights
    of an uninterrupted run (10% of labels: 142 images, batches of 32, 8 steps)."""
    overrides = dict(finetune__label_fraction=0.1, finetune__batch_size=32,
                     finetune__fine_tune_after_block=0, finetune__keep_head_layers=1,
                     finetune__augmentation="eval")
    results = {}
    for name in ("reference", "killed"):
        workdir = _copy(pretrained, tmp_path, name)
        if name == "killed":
            args = [f"--config={CONFIG_PATH}:local", "--mode=finetune", f"--workdir={workdir}"]
            args += [f"--config.{k.replace('__', '.')}={v}" for k, v in
                     {**BASE, **overrides}.items()]
            status, out = run_cli(args, SUPCON_TF_FAULT="finetune:kill_at_step=6")
            assert status == -9, out
            marker = ft.stage_tag(session.schema.resolve(_config(**overrides)), "finetune")
            assert os.path.exists(workdir / "stage2" / marker / "labels.json"), out
        prepared = session.prepare(_settings(workdir, "finetune", **overrides),
                                   log=lambda _: None)
        results[name] = prepared.execute()["finetune"]
        model, _ = prepared.run.finetuning().model()
        results[name]["weights"] = [keras.ops.convert_to_numpy(w) for w in model.weights]
    reference, killed = results["reference"], results["killed"]
    assert killed["steps"] == reference["steps"] == 8 and killed["labels"] == 142
    for got, want in zip(killed["weights"], reference["weights"]):
        assert_close(got, want, terms=8 * 32 * 16)


def test_linear_stage_on_a_transfer_dataset(pretrained, tmp_path, capsys):
    """Another dataset (12x12, 3 classes) for the linear stage: resized to the encoder's
    8x8 and logged; its metrics name both datasets; an RGB one is refused."""
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 255, (330, 12, 12, 1), np.uint8), np.arange(330) % 3
    np.savez(tmp_path / "other.npz", x_train=images[:300], y_train=labels[:300],
             x_test=images[300:], y_test=labels[300:])
    np.savez(tmp_path / "rgb.npz", x_train=np.repeat(images, 3, -1), y_train=labels,
             x_test=np.repeat(images, 3, -1), y_test=labels)
    workdir = _copy(pretrained, tmp_path, "transfer")
    lines = []
    result = session.prepare(_settings(workdir, "linear", transfer__dataset=f"npz:"
                                       f"{tmp_path / 'other.npz'}"), log=lines.append).execute()
    assert any("are 12x12; resized to 8x8, the encoder's input size" in line for line in lines)
    metrics = result["metrics"]
    assert metrics["dataset"].endswith("other.npz") and metrics["pretrain_dataset"] == "digits"
    assert not (workdir / "metrics.json").exists()  # The run's own linear stage is untouched.
    (folder,) = (workdir / "stage2").iterdir()
    with open(folder / "metrics.json") as f:
        assert json.load(f)["linear_top1"] == metrics["linear_top1"]
    session.print_result(result, 1.0)
    assert "linear evaluation (npz:" in capsys.readouterr().out
    with pytest.raises(UsageError, match="Config key 'transfer.dataset': the images of .* have "
                                         "3 channel"):
        session.prepare(_settings(workdir, "linear",
                                  transfer__dataset=f"npz:{tmp_path / 'rgb.npz'}"))


@pytest.mark.parametrize("overrides, mode, message", [
    ({"finetune__label_fraction": 0.0}, "pretrain",
     "Config key 'finetune.label_fraction' must be in (0, 1]"),
    ({"finetune__label_fraction": 1.5}, "pretrain",
     "Config key 'finetune.label_fraction' must be in (0, 1]"),
    ({"finetune__enabled": True, "finetune__labels_per_class": 500}, "all",
     "Config key 'finetune.labels_per_class': `labels_per_class` must be at most the"),
    ({"finetune__enabled": True, "finetune__fine_tune_after_block": 3}, "all",
     "Config key 'finetune.fine_tune_after_block': `fine_tune_after_block` must be in "
     "[-1, 2] for encoder 'small_cnn'"),
    ({"finetune__enabled": True, "finetune__label_fraction": 0.05}, "all",
     "Config key 'finetune.batch_size' must be at most the 70 labelled images"),
    ({"finetune__enabled": True, "finetune__keep_head_layers": 2}, "all",
     "Config key 'finetune.keep_head_layers' must be at most the 1 hidden layer(s)"),
    ({"finetune__enabled": True, "finetune__from_scratch": True,
      "finetune__keep_head_layers": 1}, "all",
     "Config key 'finetune.keep_head_layers' must be 0 with finetune.from_scratch=True"),
    ({"transfer__dataset": "npz:/nowhere.npz"}, "all",
     "Config key 'transfer.dataset' ('npz:/nowhere.npz') applies to --mode=linear and "
     "--mode=finetune"),
])
def test_bad_input_is_refused_before_training(tmp_path, overrides, mode, message):
    with pytest.raises(UsageError) as info:
        session.prepare(_settings(tmp_path / "w", mode, **overrides), log=lambda _: None)
    assert message in str(info.value)
    assert not os.path.exists(tmp_path / "w")
