"""The `supcon-tf` command line, run as a subprocess on tiny digits configs: every mode,
config overrides, the work directory's contents and the printed result."""

import glob
import json
import os
import re

import numpy as np
import pytest

from _cli_runs import ROOT, TINY, run_cli, run_many
from supcon_tf.cli import config_files, session
from supcon_tf.cli.errors import UsageError
from tolerance import assert_close


def _event_tags(logdir):
    import tensorflow as tf

    tags = set()
    for path in glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(v.tag for v in event.summary.value)
    return tags


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A pretrained tiny SupCon run (mode pretrain, with overrides)."""
    workdir = str(tmp_path_factory.mktemp("cli") / "run")
    status, out = run_cli(TINY + ["--mode=pretrain", f"--workdir={workdir}",
                                  "--config.pretrain.batch_size=128", "--config.seed=3"])
    assert status == 0, out
    return workdir


def test_pretrain_mode_writes_config_checkpoints_and_logs(run_dir):
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    # The overrides and the config file's values are recorded; defaults filled in.
    assert config["pretrain"]["batch_size"] == 128 and config["seed"] == 3
    assert config["pretrain"]["epochs"] == 1 and config["encoder"]["kwargs"]["widths"] == [8, 16]
    assert config["linear"]["schedule"] == "cosine"
    markers = sorted(glob.glob(os.path.join(run_dir, "checkpoints", "pretrain", "*.json")))
    with open(markers[-1]) as f:
        assert json.load(f)["step"] == 1437 // 128  # one epoch of full batches
    assert {"pretrain/loss", "pretrain/learning_rate"} <= _event_tags(
        os.path.join(run_dir, "logs"))
    assert not os.path.exists(os.path.join(run_dir, "metrics.json"))


def test_linear_then_eval_and_export_modes(run_dir):
    # Without --config, a mode on a workdir uses the config recorded there.
    status, out = run_cli(["--mode=linear", f"--workdir={run_dir}"])
    assert status == 0, out
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert 0.0 <= metrics["linear_top1"] <= metrics["linear_top5"] <= 1.0
    printed = re.search(r"top-1 ([\d.]+), top-5 ([\d.]+)", out)
    # Not a float rounding bound: the CLI prints 4 decimals.
    assert printed and float(printed.group(1)) == pytest.approx(metrics["linear_top1"], abs=1e-4)
    assert {"linear/loss", "linear/test_top1"} <= _event_tags(os.path.join(run_dir, "logs"))

    (s_export, out_export), (s_eval, out_eval) = run_many([
        ["--mode=export", f"--workdir={run_dir}"],
        ["--mode=eval", f"--workdir={run_dir}", "--verbosity=-1"],
    ])
    assert s_export == 0, out_export
    export_dir = os.path.join(run_dir, "export")
    assert f"exported model: {export_dir}" in out_export
    assert os.path.isfile(os.path.join(export_dir, "saved_model.pb"))
    assert os.path.isfile(os.path.join(export_dir, "model.keras"))
    assert s_eval == 0, out_eval
    with open(os.path.join(export_dir, "assets", "class_names.txt")) as f:
        assert f.read().split() == [str(i) for i in range(10)]

    # The exported classifier reproduces the linear-evaluation accuracy on the test split.
    import tensorflow as tf

    from supcon_tf import data

    loaded = tf.saved_model.load(export_dir)
    images, labels = zip(*data.load("digits", split="test")[0].as_numpy_iterator())
    images = np.stack(images).astype("float32") / 255.0
    logits = loaded.signatures["serving_default"](tf.constant(images))["logits"].numpy()
    accuracy = float(np.mean(logits.argmax(-1) == np.array(labels)))
    # Both float32 accuracies over the same test images (a mean of len(labels) values).
    assert_close(accuracy, metrics["linear_top1"], dtype="float32", terms=len(labels))

    # An existing export is kept unless --overwrite (checked in-process: same code path).
    settings = session.Settings(config=None, config_path=None, config_given=False,
                                workdir=run_dir, mode="export")
    with pytest.raises(UsageError, match="already exists; pass --overwrite"):
        session.prepare(settings, log=lambda _: None).execute()


def test_all_mode_for_simclr_and_the_cross_entropy_baseline(tmp_path):
    simclr, ce = str(tmp_path / "simclr"), str(tmp_path / "ce")
    results = run_many([
        TINY + ["--config.method=simclr", "--config.loss.temperature=0.5",
                f"--workdir={simclr}"],
        ["--config=configs/digits_ce.py:local", "--config.pretrain.epochs=1",
         "--config.eval.plots=False", f"--workdir={ce}",
         "--config.export.formats=('saved_model', 'litert')"],
    ])
    for workdir, (status, out) in zip((simclr, ce), results):
        assert status == 0, out
        with open(os.path.join(workdir, "metrics.json")) as f:
            metrics = json.load(f)
        assert f"top-1 {metrics['linear_top1']:.4f}" in out
        assert os.path.isfile(os.path.join(workdir, "export", "saved_model.pb"))
    with open(os.path.join(simclr, "config.json")) as f:
        assert json.load(f)["loss"] == {"temperature": 0.5}
    assert not os.path.exists(os.path.join(ce, "checkpoints", "linear"))  # ce: no stage 2
    # --config.export.formats adds a LiteRT file beside the SavedModel.
    assert os.path.isfile(os.path.join(ce, "export", "model.tflite"))
    assert not os.path.exists(os.path.join(simclr, "export", "model.tflite"))

    # --overwrite starts again, here with another config.
    status, out = run_cli(TINY + ["--mode=pretrain", f"--workdir={simclr}", "--overwrite"])
    assert status == 0 and "already complete" not in out, out
    with open(os.path.join(simclr, "config.json")) as f:
        assert json.load(f)["method"] == "supcon"
    assert not os.path.exists(os.path.join(simclr, "metrics.json"))


def test_default_config_is_found_from_the_package(tmp_path, monkeypatch):
    assert config_files.default_config_path() == os.path.join(ROOT, "configs",
                                                              "digits_supcon.py")
    monkeypatch.chdir(tmp_path)  # Documented paths work from any directory.
    found = config_files.find_config("configs/cifar10_supcon.py:local")
    assert found == os.path.join(ROOT, "configs", "cifar10_supcon.py") + ":local"
    assert config_files.find_config("elsewhere/none.py") == "elsewhere/none.py"


def test_all_mode_for_moco_and_byol(tmp_path):
    """The momentum-teacher methods run pretrain -> linear -> eval -> export unchanged;
    the export is the online (query) encoder."""
    names = ("moco", "byol")
    results = run_many([[f"--config=configs/digits_{n}.py:local", "--config.pretrain.epochs=1",
                         "--config.linear.epochs=1", "--config.eval.plots=False",
                         f"--workdir={tmp_path / n}"] for n in names])
    for name, (status, out) in zip(names, results):
        assert status == 0, out
        workdir = str(tmp_path / name)
        with open(os.path.join(workdir, "metrics.json")) as f:
            assert f"top-1 {json.load(f)['linear_top1']:.4f}" in out
        assert os.path.isfile(os.path.join(workdir, "export", "saved_model.pb"))
        with open(os.path.join(workdir, "config.json")) as f:
            assert json.load(f)["method"] == name


def test_all_mode_for_simsiam_and_swav_multicrop(tmp_path):
    """SimSiam (views on the device) and SwAV with multi-crop views drawn in tf.data on
    the host run pretrain -> linear -> eval -> export unchanged; a bad crop scale is a
    usage error naming its key."""
    runs = {"simsiam": [], "swav": ["--config.views.augment_on=host"]}
    results = run_many([[f"--config=configs/digits_{n}.py:local", "--config.pretrain.epochs=1",
                         "--config.linear.epochs=1", "--config.eval.plots=False",
                         f"--workdir={tmp_path / n}", *extra] for n, extra in runs.items()]
                       + [["--config=configs/digits_swav.py:local", "--mode=pretrain",
                           "--config.views.multicrop.local_scale=(0.3, 0.1)",
                           f"--workdir={tmp_path / 'bad'}"]])
    for name, (status, out) in zip(runs, results):
        assert status == 0, out
        workdir = str(tmp_path / name)
        with open(os.path.join(workdir, "metrics.json")) as f:
            assert f"top-1 {json.load(f)['linear_top1']:.4f}" in out
        assert os.path.isfile(os.path.join(workdir, "export", "saved_model.pb"))
    assert "collapse_std" in results[0][1]
    status, out = results[2]
    assert status != 0 and "views.multicrop" in out and "local_scale" in out, out
