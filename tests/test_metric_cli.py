"""Class-balanced batches, metric configs' checks and a tiny `method=metric` CLI run (TF)."""

import importlib.util
import json
import os

import keras
import numpy as np
import pytest

from _cli_runs import ROOT, run_cli
from supcon_tf import data
from supcon_tf.cli import session
from supcon_tf.cli.errors import UsageError

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="tf.data pipelines and the CLI run on TensorFlow")


def _dataset(counts):
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    images = np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1, 1) * np.ones(
        (1, 2, 2, 1), np.uint8)
    return data.from_arrays(images, labels)[0]


def test_batches_hold_p_classes_times_k_samples():
    ds = _dataset([5, 2, 7, 3, 6])  # Class 1 has fewer than K samples: they repeat.
    stream = data.class_balanced(ds, classes_per_batch=3, samples_per_class=4, seed=1)
    seen = set()
    for images, labels in stream.batch(12).take(20).as_numpy_iterator():
        groups = labels.reshape(3, 4)
        assert (groups == groups[:, :1]).all() and len(set(groups[:, 0])) == 3
        seen.update(groups[:, 0].tolist())
        # Every image is one of its class's own images.
        assert all(int(i) in np.flatnonzero(np.concatenate(
            [np.full(n, c) for c, n in enumerate([5, 2, 7, 3, 6])]) == y)
            for i, y in zip(images[:, 0, 0, 0], labels))
    assert seen == set(range(5))
    again = data.class_balanced(ds, 3, 4, seed=1).batch(12).take(3)
    first = data.class_balanced(ds, 3, 4, seed=1).batch(12).take(3)
    for (_, a), (_, b) in zip(again.as_numpy_iterator(), first.as_numpy_iterator()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, match", [
    (dict(classes_per_batch=2, samples_per_class=1),
     r"`samples_per_class` must be an integer >= 2; received samples_per_class=1"),
    (dict(classes_per_batch=4, samples_per_class=2),
     r"`classes_per_batch` must be at most the 3 classes of the dataset; received "
     r"classes_per_batch=4"),
])
def test_sampler_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.class_balanced(_dataset([3, 3, 3]), **kwargs)


def _config(name="digits_triplet", arg="local"):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs",
                                                                     f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


@pytest.mark.parametrize("overrides, message", [
    ({"loss": {"name": "triplett"}}, "Config key 'loss.name': Unknown metric loss 'triplett'. "
                                     "Did you mean 'triplet'?"),
    ({"loss": {"name": "triplet", "margn": 0.1}}, "Did you mean 'loss.margin'?"),
    ({"loss": {"name": "triplet", "mining": "hardest"}}, "`mining` must be one of"),
    ({"pretrain": {"samples_per_class": 1}}, "'pretrain.samples_per_class' must be 0"),
    ({"pretrain": {"samples_per_class": 2}}, "ask for 128 classes per batch; the training "
                                             "split has 10"),
])
def test_config_errors_before_training(tmp_path, overrides, message):
    config = _config()
    for section, values in overrides.items():
        if section == "loss":
            config.loss = values
        else:
            config[section].update(values)
    settings = session.Settings(config=config, config_path="configs/digits_triplet.py",
                                config_given=True, workdir=str(tmp_path / "w"),
                                mode="pretrain")
    with pytest.raises(UsageError) as info:
        session.prepare(settings, log=lambda _: None)
    assert message in str(info.value)


def test_tiny_triplet_run_reports_retrieval_and_indexes(tmp_path):
    workdir = str(tmp_path / "run")
    status, out = run_cli(["--config=configs/digits_triplet.py:local", f"--workdir={workdir}",
                           "--config.pretrain.epochs=1", "--config.linear.epochs=1",
                           "--config.eval.plot_samples=50", "--config.export.keras_file=False"])
    assert status == 0, out[-3000:]
    with open(os.path.join(workdir, "eval", "report.json")) as f:
        report = json.load(f)
    for name in ("representation", "embedding"):
        scores = report["retrieval"][name]
        assert scores["num_queries"] == 360
        assert 0 < scores["recall@1"] <= scores["recall@2"] <= scores["recall@8"] <= 1
    with open(os.path.join(workdir, "eval", "report.md")) as f:
        text = f.read()
    assert "## Retrieval" in text and "| embedding | cosine | 360 |" in text
    # --mode=index on the run (in this process), then a search of two test digits.
    from supcon_tf.cli import index as index_cli
    from supcon_tf.evaluation import EmbeddingIndex

    settings = session.Settings(config=None, config_path=None, config_given=False,
                                workdir=workdir, mode="index")
    result = session.prepare(settings, log=lambda _: None).execute()
    index = EmbeddingIndex.load(result["index"])
    assert len(index) == 1437 and index.dim == 8
    with open(os.path.join(result["index"], "report.json")) as f:
        calibration = json.load(f)["calibration"]
    assert [c["target_precision"] for c in calibration] == [0.9, 0.99]
    assert all(c["ranking"] == "cosine" for c in calibration)
    picture = str(tmp_path / "search.png")
    found = index_cli.search(workdir, k=3, queries="test:0,1", picture=picture)
    assert [r["query"] for r in found] == ["test:0", "test:1"] and os.path.getsize(picture)
    distances = [n["distance"] for n in found[0]["neighbours"]]
    assert distances == sorted(distances) and found[0]["neighbours"][0]["payload"]["split"]
    with pytest.raises(UsageError, match="--queries must be SPLIT:I,J"):
        index_cli.search(workdir, queries="test:a")
