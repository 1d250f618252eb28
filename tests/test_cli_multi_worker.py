"""The command line on two localhost workers (`--strategy=multi_worker`, a TF_CONFIG each).

One run per check, and as few as cover them:
  * the default digits config (augmentation on the device, so uint8 batches) through
    every stage: both workers finish; only the chief writes the work directory (one
    process's TensorBoard files, one export), the other removes its temporary export;
    each worker keeps its own log;
  * workers started with different configs both stop before training (exit 2);
  * SupCon, MoCo (queue and teacher), SwAV (multi-crop) and proxy-anchor (a metric
    loss) pretraining on two workers equal one process
    with the same global batch, deterministic, with synchronized BatchNorm and views
    made on the host (views augmented on the device are drawn per replica).
"""

import json
import os
import re

import keras
import numpy as np
import pytest

from _cli_runs import TINY, assert_close_checkpoints, latest_checkpoint, run_cli, run_workers
import tolerance

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="tf.distribute runs on the TensorFlow backend")

STEPS = 5  # 1,437 training digits // 256 per global batch, one epoch


def assert_finished(results):
    for i, (status, out) in enumerate(results):
        assert status == 0, f"worker {i} exited with {status}:\n{out[-3000:]}"
        assert "finished in" in out, out[-2000:]


def test_default_config_on_two_workers_only_the_chief_writes(tmp_path):
    workdir, scratch = tmp_path / "run", tmp_path / "tmp"
    scratch.mkdir()
    results = run_workers([*TINY, f"--workdir={workdir}"], TMPDIR=str(scratch))
    assert_finished(results)
    # Both workers report the same evaluation (the model is one model).
    accuracy = [re.search(r"top-1 (\S+), top-5 (\S+)", out).groups() for _, out in results]
    assert accuracy[0] == accuracy[1]
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert f"{metrics['linear_top1']:.4f}" == accuracy[0][0]
    assert sorted(os.listdir(workdir)) == ["checkpoints", "config.json", "export", "logs",
                                           "metrics.json"]
    # TensorBoard files from one process (their names end in <host>.<pid>.<n>.v2).
    events = [f for f in os.listdir(workdir / "logs") if f.startswith("events.")]
    assert events and len({f.split(".")[-3] for f in events}) == 1, events
    for i in range(2):
        log = (workdir / "logs" / f"worker-{i}.log").read_text()
        assert "[pretrain] epoch 1/1 step 5/5" in log and "[linear] epoch 1/1" in log, log
    assert (workdir / "export" / "saved_model.pb").exists()
    assert (workdir / "export" / "model.keras").exists()
    assert os.listdir(scratch) == []  # the other worker's temporary export is gone
    # The final checkpoints are the chief's, of the whole run.
    marker, _ = latest_checkpoint(workdir, "pretrain")
    assert marker["step"] == marker["optimizer_iterations"] == STEPS


def test_workers_with_different_configs_stop_before_training(tmp_path):
    args = [*TINY, f"--workdir={tmp_path / 'run'}"]
    # Each worker must stop by itself: none is killed when the other exits first.
    results = run_workers(args, per_worker=[[], ["--config.seed=1"]], kill_on_error=False,
                          timeout=300)
    for i, (status, out) in enumerate(results):
        assert status == 2, f"worker {i} exited with {status}:\n{out[-3000:]}"
        assert "started with different configs or modes" in out, out[-2000:]
        assert "[pretrain]" not in out
    assert not (tmp_path / "run" / "checkpoints").exists()


# Per config: its extra arguments and the terms of the bound (tests/tolerance.py). Each
# step's update comes from a mean over the global batch (256 images x its views) summed in
# another order: terms = samples x views x steps. SGD instead of the configs' Adam, whose
# update divides by the gradient's own size (a rounding-sized gradient moves a weight by
# the full learning rate in either direction).
SGD = ["--config.pretrain.optimizer=sgd"]
EQUALITY = {
    "digits_supcon": ([], 256 * 2 * STEPS),
    "digits_moco": ([], 256 * 2 * STEPS),  # queue and teacher
    # multi-crop (2 global + 4 local views); prototypes frozen for 2 of the 5 steps
    "digits_swav": ([*SGD, "--config.method_kwargs.freeze_prototypes_steps=2"],
                    256 * 6 * STEPS),
    # a metric loss: proxy-anchor (smooth: no pair mining), proxies at 10x the rate
    "digits_proxyanchor": (SGD, 256 * STEPS),
}


@pytest.mark.parametrize("config", sorted(EQUALITY))
def test_two_workers_equal_one_process(tmp_path, config):
    extra, terms = EQUALITY[config]
    args = [f"--config=configs/{config}.py:local", "--config.pretrain.epochs=1",
            "--mode=pretrain", "--config.deterministic=True",
            "--config.views.augment_on=host", "--config.encoder.kwargs.sync_batch_norm=True",
            "--config.head.sync_batch_norm=True", *extra]
    assert_finished(run_workers([*args, f"--workdir={tmp_path / 'two'}"]))
    status, out = run_cli([*args, f"--workdir={tmp_path / 'one'}"])
    assert status == 0, out[-3000:]
    got = assert_close_checkpoints(tmp_path / "two", tmp_path / "one", STEPS, terms)
    # Not a comparison of zeros: most variables (weights, optimizer moments) are not 0.
    floats = [a for a in got if a.dtype.kind == "f"]
    assert sum(not tolerance.is_close(a, np.zeros_like(a), terms=terms) for a in floats) \
        > len(floats) // 2
