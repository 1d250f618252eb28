"""The `supcon-tf` command line, run as a subprocess on tiny digits configs: every mode,
config overrides, the work directory's contents and the printed result."""

import glob
import json
import os
import re
import runpy

import pytest

from _cli_runs import ROOT, TINY, run_cli, run_many
from _export_helpers import digits_test_accuracy
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

    # One after the other: a work directory takes one run at a time (its lock).
    s_export, out_export = run_cli(["--mode=export", f"--workdir={run_dir}"])
    s_eval, out_eval = run_cli(["--mode=eval", f"--workdir={run_dir}", "--verbosity=-1"])
    assert s_export == 0, out_export
    export_dir = os.path.join(run_dir, "export")
    assert f"exported model: {export_dir}" in out_export
    assert os.path.isfile(os.path.join(export_dir, "saved_model.pb"))
    assert os.path.isfile(os.path.join(export_dir, "model.keras"))
    assert s_eval == 0, out_eval
    with open(os.path.join(export_dir, "assets", "class_names.txt")) as f:
        assert f.read().split() == [str(i) for i in range(10)]

    # The exported classifier reproduces the linear-evaluation accuracy on the test split.
    accuracy, count = digits_test_accuracy(export_dir)
    # Both float32 accuracies over the same test images (a mean of `count` values).
    assert_close(accuracy, metrics["linear_top1"], dtype="float32", terms=count)

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
    monkeypatch.chdir(tmp_path)  # Documented paths and bundled names work from anywhere.
    bundled = os.path.join(ROOT, "configs", "cifar10_supcon.py")
    for spec in ("configs/cifar10_supcon.py", "cifar10_supcon.py", "cifar10_supcon"):
        assert config_files.find_config(spec + ":local") == bundled + ":local"
        assert config_files.find_config(spec) == bundled
    assert config_files.find_config("elsewhere/none.py") == "elsewhere/none.py"
    (tmp_path / "cifar10_supcon.py").write_text("# a user's own file wins over the name\n")
    assert config_files.find_config("cifar10_supcon.py:local") == "cifar10_supcon.py:local"
    # Loaded as --config loads it: the same ConfigDict as running the file itself.
    loaded = config_files.load_config("digits_supcon:local")
    direct = runpy.run_path(os.path.join(ROOT, "configs", "digits_supcon.py"))
    assert loaded.to_dict() == direct["get_config"]("local").to_dict()
    assert config_files.load_config("digits_supcon").to_dict() == direct["get_config"]().to_dict()


def test_bundled_configs_are_listed_with_their_descriptions():
    configs = config_files.bundled_configs()
    on_disk = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "configs"))
                     if f.endswith(".py") and not f.startswith("_"))
    assert list(configs) == on_disk and config_files.DEFAULT_CONFIG in configs
    listing = config_files.listing().splitlines()
    assert len(listing) == 1 + len(configs) and os.path.join(ROOT, "configs") in listing[0]
    for (name, summary), line in zip(configs.items(), listing[1:]):
        text = open(os.path.join(ROOT, "configs", f"{name}.py")).read()
        # The docstring's first line, whole: it ends the line it starts.
        assert summary and f"{summary}\n" in text and text.index(summary) < 10, name
        assert line.split() == [name, *summary.split()]


def test_a_missing_config_names_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = os.path.join(ROOT, "configs")
    message = config_files.describe_missing("configs/nope.py:local")
    assert message.startswith(
        f"Config file 'configs/nope.py' does not exist: tried {tmp_path}/configs/nope.py and "
        f"{folder}/nope.py (searched the current directory {tmp_path}, then the bundled "
        f"configs folder {folder}). Bundled configs (--config=NAME or NAME:local): ")
    assert ", digits_supcon, digits_supcon_moco, " in message
    assert f"tried {tmp_path}/nope and {folder}/nope.py (" in config_files.describe_missing("nope")
    assert "exist: tried /abs/nope.py. Bundled" in config_files.describe_missing("/abs/nope.py")
    with pytest.raises(UsageError) as raised:
        config_files.load_config("nope:local")
    assert str(raised.value) == config_files.describe_missing("nope:local")

    # An installation without its configs: no default, and a message that says where.
    monkeypatch.setattr(config_files, "_config_dirs", lambda: [tmp_path / "a", tmp_path / "b"])
    assert config_files.default_config_path() is None and config_files.bundled_configs() == {}
    argv, given = session.locate_config_argument(["supcon-tf", f"--workdir={tmp_path}/w"])
    assert argv == ["supcon-tf", f"--workdir={tmp_path}/w"] and not given
    settings = session.Settings(config=None, config_path=None, config_given=False,
                                workdir=str(tmp_path / "w"))
    with pytest.raises(UsageError) as raised:
        session.prepare(settings, log=lambda _: None)
    assert str(raised.value) == (
        "No --config given and the default config 'digits_supcon' is not installed (no "
        f"bundled configs are installed: neither {tmp_path}/a nor {tmp_path}/b exists); "
        "pass --config=FILE.")
    assert config_files.describe_missing("x.py").endswith(
        f"tried {tmp_path}/x.py (searched the current directory {tmp_path}; no bundled configs "
        f"are installed: neither {tmp_path}/a nor {tmp_path}/b exists); pass --config=FILE.")
    assert not (tmp_path / "w").exists()


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
