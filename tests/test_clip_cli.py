"""CLIP through the command line (configs/digits_clip.py:local): a run killed with SIGKILL
in pretraining and rerun resumes with the same vocabulary, and ends with zero-shot and
Recall@k in metrics.json and the image-text SavedModel in export/image_text/."""

import json
import os
import types

import numpy as np
import pytest

from supcon_tf.cli import adapters
from supcon_tf.cli.errors import UsageError
from _cli_runs import latest_checkpoint, run_cli
from tolerance import assert_close

# 2 epochs of 11 steps (batch 128 of 1,437 training digits); killed after step 14, past
# the checkpoint of epoch 1.
RUN = ["--config=configs/digits_clip.py:local", "--config.linear.epochs=1",
       "--config.eval.plots=False"]
TOTAL_STEPS, KILL_AT = 22, 14


def test_clip_cli_resume_metrics_and_export(tmp_path):
    workdir = str(tmp_path / "run")
    status, out = run_cli(RUN + [f"--workdir={workdir}"],
                          SUPCON_TF_FAULT=f"pretrain:kill_at_step={KILL_AT}")
    assert status == -9, f"expected SIGKILL, got {status}\n{out}"
    marker, _ = latest_checkpoint(workdir)
    assert 0 < marker["step"] <= KILL_AT, marker
    with open(os.path.join(workdir, "tokenizer.json")) as f:
        vocabulary = json.load(f)

    status, out = run_cli(RUN + [f"--workdir={workdir}"])
    assert status == 0, out
    assert f"resuming from the checkpoint of step {marker['step']}" in out
    final, _ = latest_checkpoint(workdir)
    assert final["step"] == final["optimizer_iterations"] == TOTAL_STEPS, final
    with open(os.path.join(workdir, "tokenizer.json")) as f:
        assert json.load(f) == vocabulary  # Rebuilt identically from the captions.
    # Every training word, the class names and nothing else (no test-template word).
    assert {"handwritten", "seven", "scan"} <= set(vocabulary["vocabulary"])
    assert not {"drawing", "handwriting", "image"} & set(vocabulary["vocabulary"])

    with open(os.path.join(workdir, "metrics.json")) as f:
        metrics = json.load(f)
    for key in ("zero_shot_top1", "zero_shot_top5", "image_to_text_recall@1",
                "image_to_text_recall@5", "text_to_image_recall@1", "linear_top1"):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)
    assert metrics["zero_shot_top1"] <= metrics["zero_shot_top5"]
    assert metrics["image_to_text_recall@1"] <= metrics["image_to_text_recall@5"]
    assert metrics["num_templates"] == 3

    import tensorflow as tf

    loaded = tf.saved_model.load(os.path.join(workdir, "export", "image_text"))
    images = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype("float32")
    prompts = tf.constant(["a handwritten seven", "the digit one"])
    image = loaded.signatures["embed_image"](images=images)["embeddings"].numpy()
    text = loaded.signatures["embed_text"](captions=prompts)["embeddings"].numpy()
    logits = loaded.signatures["zero_shot"](images=images, prompts=prompts)["logits"].numpy()
    assert_close(np.linalg.norm(image, axis=1), np.ones(3), terms=image.shape[1])
    # CLIP's logits: exp(log_scale) * cosine, the scale learnt from 1/0.07 (no bias).
    cosine = image @ text.T
    scale = logits / cosine
    assert np.all(scale > 1.0) and np.all(scale <= 100.0)
    assert_close(logits, scale.mean() * cosine, terms=image.shape[1], magnitude=100.0)


def _fake_run(**config):
    return types.SimpleNamespace(config=config)


def test_captions_section_is_refused_for_an_image_method_and_host_augmentation_for_clip():
    assert adapters.for_run(_fake_run(method="simclr", captions={})) is None
    with pytest.raises(UsageError, match="'captions' applies to the image-text methods"):
        adapters.for_run(_fake_run(method="simclr", captions={"context_length": 8}))
    with pytest.raises(UsageError, match="'views.augment_on' must be 'device'.*'host'"):
        adapters.for_run(_fake_run(method="clip", views={"augment_on": "host"}))
