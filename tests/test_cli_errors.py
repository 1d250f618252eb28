"""Bad input stops the command line before training: exit status 2 and one paragraph."""

import importlib.util
import json
import os
import re

import ml_collections
import numpy as np
import pytest
from PIL import Image

from _cli_runs import ROOT, TINY, latest_checkpoint, run_cli, run_many
from supcon_tf.cli import build, schema, session
from supcon_tf.cli.errors import UsageError


def _digits_config(arg="local"):
    spec = importlib.util.spec_from_file_location(
        "digits_supcon", os.path.join(ROOT, "configs", "digits_supcon.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


# ------------------------------------------------------------------ in-process: schema


def test_resolve_fills_defaults_and_keeps_values():
    config = ml_collections.ConfigDict({"method": "simclr", "pretrain": {"epochs": 3}})
    resolved = schema.resolve(config)
    assert resolved["method"] == "simclr" and resolved["pretrain"]["epochs"] == 3
    assert resolved["pretrain"]["batch_size"] == schema.defaults().pretrain.batch_size
    assert resolved["pretrain"]["learning_rate"] == schema.defaults().pretrain.learning_rate


@pytest.mark.parametrize("config, message", [
    ({"pretrain": {"epoch": 3}}, "Unknown config key 'pretrain.epoch'. Did you mean "
                                 "'pretrain.epochs'?"),
    ({"dataset": {"nmae": "digits"}}, "Did you mean 'dataset.name'?"),
    ({"lineár": {}}, "Unknown config key"),
    ({"pretrain": {"epochs": "ten"}}, "'pretrain.epochs' must be an integer; received 'ten'"),
    ({"pretrain": {"learning_rate": "0.1"}}, "'pretrain.learning_rate' must be a number"),
    ({"deterministic": 1}, "'deterministic' must be a boolean"),
    ({"views": {"image_size": 32}}, "'views.image_size' must be a tuple or a list or None"),
    ({"views": {"image_size": (32,)}}, "two positive ints"),
    ({"encoder": {"kwargs": 3}}, "'encoder.kwargs' must be a dict"),
    ({"method": "supcom"}, "'method' must be one of"),
    ({"method": "supcom"}, "received 'supcom'"),
    ({"method_kwargs": 3}, "'method_kwargs' must be a dict"),
    ({"precision": "fp8"}, "'precision' must be one of"),
    ({"pretrain": {"epochs": 0}}, "'pretrain.epochs' must be > 0"),
    ({"linear": {"lr_scaling": "cubic"}}, "'linear.lr_scaling' must be one of"),
    ({"method": "simclr", "views": {"num_views": 1}}, "must be >= 2 for method 'simclr'"),
    ({"export": {"formats": ("saved_model", "onx")}}, "`export.formats` holds an unknown "
                                                      "format 'onx'; the formats are"),
])
def test_resolve_rejects(config, message):
    with pytest.raises(UsageError) as info:
        schema.resolve(config)
    assert message in str(info.value)


def test_ints_are_accepted_for_floats():
    resolved = schema.resolve({"pretrain": {"learning_rate": 1}})
    assert resolved["pretrain"]["learning_rate"] == 1.0
    assert isinstance(resolved["pretrain"]["learning_rate"], float)


# ---------------------------------------------- in-process: names and workdirs (prepare)


def _settings(tmp_path, mode="pretrain", workdir=None, **overrides):
    config = _digits_config()
    for path, value in overrides.items():
        section, _, key = path.rpartition("__")
        (config[section] if section else config)[key] = value
    return session.Settings(config=config, config_path=os.path.join(ROOT, "configs",
                                                                    "digits_supcon.py"),
                            config_given=True, workdir=workdir or str(tmp_path / "w"),
                            mode=mode)


@pytest.mark.parametrize("overrides, mode, message", [
    ({"dataset__name": "digitz"}, "pretrain", "Config key 'dataset'"),
    ({"encoder__name": "resnet51"}, "pretrain", "Unknown encoder 'resnet51'. Did you mean "
                                                "'resnet50'"),
    ({"encoder__kwargs": {"widhts": (8, 16)}}, "pretrain",
     "Unknown config key 'encoder.kwargs.widhts'. Did you mean 'encoder.kwargs.widths'?"),
    ({"pretrain__optimizer": "lasr"}, "pretrain", "Unknown optimizer 'lasr' in config key "
                                                  "'pretrain.optimizer'. Did you mean 'lars'?"),
    ({"pretrain__optimizer_kwargs": {"momentun": 0.9}}, "pretrain", "momentum"),
    ({"views__policy": "simcrl"}, "pretrain", "Did you mean 'simclr'?"),
    ({"views__kwargs": {"seed": 1}}, "pretrain", "'views.kwargs.seed' is set by the command"),
    ({"loss": {"temprature": 0.1}}, "pretrain", "Did you mean 'loss.temperature'?"),
    ({"pretrain__batch_size": 4096}, "pretrain", "at most the 1437 images"),
    ({"method_kwargs": {"queue": 3}}, "pretrain",
     "Unknown config key 'method_kwargs.queue'"),
    ({"loss": {"temperature": "hot"}}, "pretrain", "`temperature` must be a number; "
                                                   "received temperature='hot'"),
    ({"loss": {"temperature": -1.0}}, "pretrain", "`temperature` must be > 0"),
    ({}, "export", "holds no run"),
    ({}, "linear", "holds no run"),
    # Settings that must agree with the data (issue 20): refused before any training.
    ({"method": "metric", "loss": {"name": "proxy_anchor", "num_classes": 5}}, "pretrain",
     "Config key 'loss.num_classes' (5) must be at least the dataset's 10 classes"),
    ({"eval__knn_every_epochs": 1, "eval__knn_k": 5000}, "pretrain",
     "Config key 'eval.knn_k' (5000) must be at most the 1437 images"),
    ({"method": "moco", "loss": {}, "method_kwargs": {"queue_size": 8}}, "pretrain",
     "Config key 'method_kwargs.queue_size' (8) must be at least the"),
    ({"method": "nnclr", "loss": {}, "method_kwargs": {"queue_size": 100}}, "pretrain",
     "Config key 'method_kwargs.queue_size' (100) must be at least the 256 rows the global "
     "batch enqueues"),
    ({"pretrain__batch_size": 400, "pretrain__samples_per_class": 200}, "pretrain",
     "Config key 'pretrain.samples_per_class' (200) must be at most the samples of the "
     "smallest class"),
])
def test_prepare_rejects_before_training(tmp_path, overrides, mode, message):
    with pytest.raises(UsageError) as info:
        session.prepare(_settings(tmp_path, mode=mode, **overrides), log=lambda _: None)
    assert message in str(info.value)
    assert not os.path.exists(tmp_path / "w")  # Nothing was claimed or written.


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(UsageError, match="quantum.*mirrored"):
        build.get_strategy("quantum")


@pytest.mark.parametrize("name", build.TF_ONLY_STRATEGIES)
def test_tf_distribute_strategies_are_refused_on_jax(monkeypatch, name):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(UsageError, match=f"--strategy={name} is a tf.distribute strategy, "
                                         "which the jax backend cannot take"):
        build.get_strategy(name)
    build.get_strategy("auto")  # one device here


def test_data_parallel_is_refused_off_jax():
    with pytest.raises(UsageError, match="--strategy=data_parallel is keras.distribution's, "
                                         "which runs on KERAS_BACKEND=jax; the tensorflow "
                                         "backend takes auto, cpu, gpu, mirrored"):
        build.get_strategy("data_parallel")


def test_tf_config_task_outside_the_cluster_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                "task": {"type": "worker", "index": 2}}))
    with pytest.raises(UsageError, match="--strategy=multi_worker: `TF_CONFIG` task "
                                         ".*not a member of its cluster"):
        build.get_strategy("multi_worker", worker_timeout=1)


# ------------------------------------------------------------ subprocess: the command


def test_bad_input_exits_2_with_a_message(tmp_path):
    # A workdir that holds a SimCLR run: a SupCon command on it must be refused.
    other = _digits_config()
    other.method = "simclr"
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "config.json").write_text(json.dumps(schema.resolve(other)))
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    project = tmp_path / "project"  # A user's folder: --overwrite must delete nothing.
    (project / "thesis").mkdir(parents=True)
    (project / "thesis" / "chapter1.tex").write_text("\\chapter{One}")
    (project / "notes.txt").write_text("remember")
    one_class = tmp_path / "one_class"
    for split in ("train", "test"):
        (one_class / split / "cats").mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(
                one_class / split / "cats" / f"{i}.png")
    cases = [
        (["--config.pretrain.epoch=3"],
         ["Unknown config key 'pretrain.epoch'", "Did you mean 'pretrain.epochs'?"]),
        (["--config.pretrain.epochs=abc"], ["--config.pretrain.epochs=abc", "int()"]),
        (["--config=does_not_exist:local"],
         ["'does_not_exist' does not exist", os.path.join(ROOT, "does_not_exist"),
          os.path.join(ROOT, "configs", "does_not_exist.py"), "digits_supcon, "]),
        (["--config=configs/digits_supcon.py:huge"], ["Unknown config argument 'huge'"]),
        (TINY + ["--config.encoder.name=resnet51"],
         ["Unknown encoder 'resnet51'", "Did you mean 'resnet50'", "small_cnn"]),
        (TINY + [f"--workdir={taken}"],
         ["holds a run of a different config", "method: 'simclr' -> 'supcon'", "--overwrite"]),
        (TINY + [f"--workdir={a_file}"], ["is an existing file, not a directory"]),
        (TINY + [f"--workdir={project}", "--overwrite"],
         [f"--overwrite deletes only a run's own files, and {str(project)!r} is not a run's "
          "work directory (notes.txt, thesis); nothing was deleted", f"{project}/run"]),

        (TINY + [f"--config.dataset.name=folder:{one_class}",
                 "--config.pretrain.batch_size=2", "--config.linear.batch_size=2"],
         ["has 1 class(es) (cats)", "needs at least 2"]),
    ]
    results = run_many([args + [f"--workdir={tmp_path / 'w'}"]
                        if not any(a.startswith("--workdir") for a in args) else args
                        for args, _ in cases])
    for (args, expected), (status, output) in zip(cases, results):
        assert status == 2, f"{args}: status {status}\n{output}"
        error = [line for line in output.splitlines() if line.startswith("supcon-tf: error:")]
        assert len(error) == 1, f"{args}: expected one error paragraph\n{output}"
        for text in expected:
            assert text in error[0], f"{args}: {text!r} not in {error[0]!r}"
        assert "Traceback" not in output, output
    # Nothing was trained or claimed: the refused workdir still holds the other run only.
    assert sorted(os.listdir(taken)) == ["config.json"]
    assert not os.path.exists(tmp_path / "w")
    assert (project / "thesis" / "chapter1.tex").read_text() == "\\chapter{One}"
    assert sorted(os.listdir(project)) == ["notes.txt", "thesis"]



def test_nan_loss_stops_with_status_3_and_keeps_the_last_checkpoint(tmp_path):
    """A diverging run (learning rate 1e30) stops at its first non-finite loss or weights;
    every checkpoint on disk is finite and older than that step, and the rerun resumes."""
    workdir = str(tmp_path / "diverged")
    args = TINY + ["--mode=pretrain", "--config.pretrain.epochs=2",
                   "--config.pretrain.optimizer=sgd", "--config.pretrain.learning_rate=1e30",
                   "--config.checkpoint_every_steps=1", f"--workdir={workdir}"]
    status, output = run_cli(args)
    assert status == 3, output
    error = [line for line in output.splitlines() if line.startswith("supcon-tf: error:")]
    assert len(error) == 1 and "Traceback" not in output, output
    stopped_at = int(re.search(r"Training stopped at step (\d+)", error[0]).group(1))
    marker, arrays = latest_checkpoint(workdir)
    assert 0 < marker["step"] < stopped_at, (marker, error)
    assert all(np.all(np.isfinite(a)) for a in arrays if a.dtype.kind == "f")
    status, output = run_cli(args)  # Resumes from the intact checkpoint (and diverges again).
    assert status == 3 and f"resuming from the checkpoint of step {marker['step']}" in output
