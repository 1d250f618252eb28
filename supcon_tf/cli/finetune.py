"""Stage 2 beyond linear evaluation: fine-tuning on few labels, and transfer datasets.

Fine-tuning (SimCLR Sec. 6; `train_mode=finetune` in its TF2 code) trains a copy of
the pretrained encoder and a new head end to end on a class-balanced subset of the
labels (`data.labelled_subset`), blocks 0..`fine_tune_after_block` frozen
(`encoders.blocks`), optionally under the projection head's first layers
(`heads.FineTuneHead`). A transfer dataset (`transfer.dataset`) replaces the
pretraining one in `--mode=linear` and `--mode=finetune`; its images are resized to
the encoder's input size.

Such a stage lives in its own folder of the work directory, `stage2/<tag>/`, so that
one pretrained run is fine-tuned on 1%, 10% and 100% of its labels side by side:
`checkpoints/<stage>/`, `logs/`, `labels.json` (the subset's indices, drawn once and
read back by every rerun), `metrics.json` and `export/`. The tag names the stage, the
dataset and the labels, and ends in a digest of the stage's settings. The plain
linear stage on the pretraining dataset keeps the run's top-level layout.
"""

import dataclasses
import hashlib
import json
import os
import re

import numpy as np
import tensorflow as tf

from supcon_tf import data, export, methods
from supcon_tf.cli import build, say, schema
from supcon_tf.cli import workdir as wd
from supcon_tf.cli.errors import UsageError
from supcon_tf.cli.training import ResumableFit
from supcon_tf.encoders.blocks import freeze_through
from supcon_tf.heads import FineTuneHead, ProjectionHead

STAGE2_DIR = "stage2"
LABELS_FILE = "labels.json"


@dataclasses.dataclass
class Target:
    """The dataset a stage-2 classifier trains and is tested on."""

    name: str
    train: object
    test: object
    info: object
    train_size: int
    test_split: str

    @property
    def num_classes(self):
        return int(self.info.num_classes)

    @property
    def class_names(self):
        return list(self.info.class_names or [str(i) for i in range(self.num_classes)])


def pretrained_part(config):
    """`config` without the sections a stage-2 mode may change (`schema.STAGE2_SECTIONS`)."""
    return {k: v for k, v in config.items() if k not in schema.STAGE2_SECTIONS}


def load_transfer(config, input_shape, log=say):
    """The `transfer.dataset` as a `Target` for an encoder of `input_shape`, or None.

    Grayscale images for an RGB encoder load as RGB; images of another size are
    resized by the stage's transforms (both logged). Raises `UsageError` naming
    `transfer.dataset`.
    """
    t = config["transfer"]
    if not t["dataset"]:
        return None
    section = dict(schema.default_values()["dataset"], name=t["dataset"],
                   train_split=t["train_split"], test_split=t["test_split"],
                   data_dir=t["data_dir"])

    def load(section):
        try:
            return build.load_data(section, log)
        except UsageError as e:
            raise UsageError(str(e).replace("Config key 'dataset'", "Config key "
                                            "'transfer.dataset'")) from e

    train, test, info = load(section)
    channels = info.image_shape[2]
    if channels == 1 and input_shape[2] == 3:
        log(f"[transfer] {info.name!r} is grayscale and the encoder takes RGB: loaded as RGB.")
        train, test, info = load(dict(section, to_rgb=True))
    elif channels != input_shape[2]:
        raise UsageError(
            f"Config key 'transfer.dataset': the images of {info.name!r} have {channels} "
            f"channel(s); the encoder pretrained on {config['dataset']['name']!r} takes "
            f"{input_shape[2]}.")
    if tuple(info.image_shape[:2]) != tuple(input_shape[:2]):
        size = ("vary in size" if None in info.image_shape[:2] else
                f"are {info.image_shape[0]}x{info.image_shape[1]}")
        log(f"[transfer] the images of {info.name!r} {size}; resized to "
            f"{input_shape[0]}x{input_shape[1]}, the encoder's input size.")
    if info.num_classes < 2:
        raise UsageError(f"Config key 'transfer.dataset': {info.name!r} has "
                         f"{info.num_classes} class(es); a classifier needs at least 2.")
    train_size = int(info.split_sizes[t["train_split"]])
    return Target(t["dataset"], train, test, info, train_size, t["test_split"])


def stage_tag(config, stage):
    """The folder name under `stage2/` of `stage` ("linear" or "finetune")."""
    section = {k: v for k, v in config[stage].items() if k != "enabled"}
    settings = json.dumps({stage: section, "transfer": config["transfer"]}, sort_keys=True)
    parts = [stage]
    if config["transfer"]["dataset"]:
        parts.append(re.sub(r"[^A-Za-z0-9]+", "_", config["transfer"]["dataset"]).strip("_")
                     [-40:])
    if stage == "finetune":
        per_class = section["labels_per_class"]
        parts.append(f"{per_class}perclass" if per_class else
                     f"{section['label_fraction'] * 100:g}pct")
        if section["from_scratch"]:
            parts.append("scratch")
    return "-".join(parts + [hashlib.sha256(settings.encode()).hexdigest()[:8]])


def head_layers(config):
    """How many hidden layers the run's projection head has (0: no head, method ce)."""
    if config["method"] == "ce":
        return 0
    dims = config["head"]["hidden_dims"]
    return 1 if dims is None else len(dims)


class FineTune:
    """The fine-tuning stage of `run` (a `stages.Run`): every check on construction
    (before any training), the model on first use, `execute()` to train and report."""

    def __init__(self, run):
        self.run = run
        c = self.config = run.config
        f = self.settings = c["finetune"]
        self.target = run.target
        self.folder = run.path(STAGE2_DIR, stage_tag(c, "finetune"))
        self.indices = self._subset()
        self.size = len(self.indices)
        if f["batch_size"] > self.size:
            raise UsageError(
                f"Config key 'finetune.batch_size' must be at most the {self.size} labelled "
                f"images (every batch is full); received {f['batch_size']}.")
        if f["from_scratch"] and f["keep_head_layers"]:
            raise UsageError("Config key 'finetune.keep_head_layers' must be 0 with "
                             "finetune.from_scratch=True (no pretrained head to keep); "
                             f"received {f['keep_head_layers']}.")
        if f["keep_head_layers"] > head_layers(c):
            raise UsageError(
                f"Config key 'finetune.keep_head_layers' must be at most the "
                f"{head_layers(c)} hidden layer(s) of the projection head of method "
                f"{c['method']!r}; received {f['keep_head_layers']}.")
        try:  # The blocks of a fresh encoder (the pretrained one is loaded later).
            freeze_through(build.encoder(c, run.input_shape), f["fine_tune_after_block"])
        except ValueError as e:
            raise UsageError(f"Config key 'finetune.fine_tune_after_block': {e}") from None
        build.optimizer(f, 1, "finetune")
        build.augmenter(f["augmentation"], run.input_shape[:2], key="finetune.augmentation")
        self._model = None

    def path(self, *parts):
        return wd.path(self.folder, *parts)

    def _subset(self):
        """The labelled subset's indices: read from `labels.json`, else drawn."""
        stored = self.path(LABELS_FILE)
        if tf.io.gfile.exists(stored):
            with tf.io.gfile.GFile(stored) as f:
                record = json.load(f)
            if record["train_size"] != self.target.train_size:
                raise UsageError(
                    f"{stored} was drawn from {record['train_size']} training images; "
                    f"{self.target.name!r} now has {self.target.train_size}.")
            return np.asarray(record["indices"], np.int64)
        labels = data.dataset_labels(self.target.train)
        f = self.settings
        try:
            return data.labelled_subset(labels, f["label_fraction"], f["labels_per_class"],
                                        seed=self.config["seed"])
        except ValueError as e:
            raise UsageError(f"Config key 'finetune.labels_per_class': {e}") from None

    def _write_subset(self):
        if not self.run.chief or tf.io.gfile.exists(self.path(LABELS_FILE)):
            return
        f = self.settings
        tf.io.gfile.makedirs(self.folder)
        wd.write_json(self.path(LABELS_FILE), {
            "dataset": self.target.name, "train_size": self.target.train_size,
            "seed": self.config["seed"], "label_fraction": f["label_fraction"],
            "labels_per_class": f["labels_per_class"], "indices": self.indices.tolist()})

    def steps_per_epoch(self):
        return self.size // self.settings["batch_size"]

    def model(self):
        """(classifier, its ResumableFit): built once, starting from the pretrained weights
        (from a fresh encoder with `from_scratch`)."""
        if self._model is not None:
            return self._model
        run, c, f = self.run, self.config, self.settings
        pretrained = None if f["from_scratch"] else run.pretrained()
        kept = f["keep_head_layers"]
        if kept and not isinstance(getattr(pretrained, "head", None), ProjectionHead):
            raise UsageError(f"Config key 'finetune.keep_head_layers' must be 0 for method "
                             f"{c['method']!r}, whose head is not a projection MLP.")
        dummy = np.zeros((1, *run.input_shape), "float32")
        with run.strategy.scope():
            encoder = build.encoder(c, run.input_shape)
            if pretrained is not None:
                encoder.set_weights(pretrained.encoder.get_weights())
            freeze_through(encoder, f["fine_tune_after_block"])
            hidden = pretrained.head.hidden[:kept] if kept else []
            head = FineTuneHead(self.target.num_classes,
                                [dense.units for dense, _ in hidden],
                                use_batch_norm=c["head"]["use_batch_norm"],
                                sync_batch_norm=c["head"]["sync_batch_norm"],
                                activation=c["head"]["activation"])
            model = methods.LinearClassifier(encoder, self.target.num_classes,
                                             freeze_encoder=False, head=head)
            model.compile(optimizer=build.optimizer(f, self.steps_per_epoch(), "finetune"),
                          steps_per_execution=c["steps_per_execution"])
            optimizer = model.optimizer
            model(dummy, training=False)
            if kept:
                head.copy_hidden(pretrained.head)
            if f["weight_decay"] and not f["head_weight_decay"]:
                getattr(optimizer, "inner_optimizer", optimizer).exclude_from_weight_decay(
                    var_list=head.trainable_variables)
            optimizer.build(model.trainable_variables)
        fit = ResumableFit(
            "finetune", model, list(model.variables) + list(optimizer.variables),
            run._epoch_data("finetune", f["augmentation"], {}, 1, "host",
                            train=data.subsets.take(self.target.train, self.indices,
                                                    self.target.train_size)),
            self.steps_per_epoch(), f["epochs"], c["seed"] + 2,
            self.path("checkpoints", "finetune"), keep=c["keep_checkpoints"],
            checkpoint_every=c["checkpoint_every_steps"], log_dir=self.path("logs"),
            log=run.log)
        self._model = (model, fit)
        return self._model

    def train(self):
        """Trains (or resumes) the stage; returns the classifier with its final weights."""
        model, fit = self.model()
        self._write_subset()
        self.run.training = fit
        fit.run()
        return model

    def execute(self):
        """Trains, evaluates on the test split, writes `metrics.json` (and `export/`)."""
        model = self.train()
        run, c, f = self.run, self.config, self.settings
        results = model.evaluate(run.eval_data(self.target.test), verbose=0, return_dict=True)
        metrics = {
            "stage": "finetune", "method": c["method"], "dataset": self.target.name,
            "pretrain_dataset": c["dataset"]["name"], "test_split": self.target.test_split,
            "labels": self.size, "label_fraction": f["label_fraction"],
            "labels_per_class": f["labels_per_class"],
            "fine_tune_after_block": f["fine_tune_after_block"],
            "keep_head_layers": f["keep_head_layers"], "from_scratch": f["from_scratch"],
            "steps": int(model.optimizer.iterations.numpy()),
            "finetune_top1": float(results["top1"]),
            "finetune_top5": float(results["top5"]), "test_loss": float(results["loss"]),
            "folder": self.folder}
        if run.chief:
            wd.write_json(self.path(wd.METRICS_FILE), metrics)
        if c["export"]["enabled"]:
            metrics["export"] = self.export(model)
        return metrics

    def export(self, model):
        """The fine-tuned classifier as a SavedModel (a `classify` signature) under
        `export/` of the stage's folder (kept if it exists), and `model.keras`."""
        target = self.path("export")
        if os.path.exists(target):
            self.run.log(f"[finetune] {target} already exists; kept.")
            return target
        with self.run.output(STAGE2_DIR, os.path.basename(self.folder), "export") as folder:
            export.export_saved_model(
                folder, encoder=model.encoder, classifier_head=model.head,
                image_shape=self.run.input_shape, class_names=self.target.class_names,
                config=self.config)
            if self.config["export"]["keras_file"]:
                export.save_keras(os.path.join(folder, "model.keras"), model, overwrite=True)
        return target
