"""The stages of a run: pretrain, linear evaluation, fine-tuning, evaluation report, export.

`Run` builds what every stage needs once (data, input shape, strategy) from a
resolved config and a work directory; each stage method builds its models under
the strategy's scope, trains them with `ResumableFit` (so a rerun resumes) and
writes its outputs into the work directory. In a multi-worker run every worker runs
every stage (training, evaluation and saving take all of them), but only the chief
(`distribute.is_chief`) writes into the work directory; where a save needs every
worker, the others write into a temporary folder that they delete.
"""

import contextlib
import os
import shutil
import tempfile

import numpy as np

from supcon_tf import data, distribute, evaluation, export, methods, views
from supcon_tf.cli import adapters, build, checkpoint, files, say, schema, workdir as wd
from supcon_tf.cli import finetune as ft
from supcon_tf.cli.errors import UsageError, WriteFailedError
from supcon_tf.cli.training import ResumableFit, summary_writer


CACHE_BYTES = 1 << 30


def _first_view(views, labels):
    return views[:, 0], labels


class Run:
    """One run: a resolved `config` (dict) in `workdir`, under `strategy`."""

    def __init__(self, config, workdir, strategy, log=say):
        self.config = config
        self.workdir = workdir
        self.strategy = strategy
        self.chief = distribute.is_chief(strategy)
        self.log = log
        self.train_data, self.test_data, self.info = build.load_data(config["dataset"], log)
        self.input_shape = build.image_shape(config, self.info, log)
        self.num_classes = int(self.info.num_classes)
        self.class_names = list(getattr(self.info, "class_names", None) or
                                [str(i) for i in range(self.num_classes)])
        self.train_size = int(self.info.split_sizes[config["dataset"]["train_split"]])
        if self.train_size == 0:
            raise UsageError(f"Config key 'dataset': the {config['dataset']['train_split']!r} "
                             f"split of {self.info.name!r} holds no images.")
        if self.num_classes < 2:
            raise UsageError(
                f"Config key 'dataset': {self.info.name!r} has {self.num_classes} class(es) "
                f"({', '.join(self.class_names) or 'none'}); the linear stage (and supervised "
                "pretraining) needs at least 2. Give the folder one sub-folder per class.")
        for stage in ("pretrain", "linear"):
            batch = config[stage]["batch_size"]
            if batch > self.train_size:
                raise UsageError(
                    f"Config key '{stage}.batch_size' must be at most the {self.train_size} "
                    f"images of the training split (every batch is full); received {batch}.")
        # Everything a bad config can name is built once here, before any training.
        self.resize = None
        self._train_cache = {}
        self._built = {}  # models restored once and shared by the stages of this process
        self.training = None  # the ResumableFit that trains now (for an interrupt's report)
        if config["views"]["augment_on"] == "device" and self.info.image_shape[0] is None:
            self.resize = self.input_shape[:2]  # Device batches need one image size.
        self.pretrain_augmenter = build.augmenter(
            config["views"]["policy"], self.input_shape[:2], config["views"]["kwargs"],
            seed=config["seed"])
        build.augmenter(config["linear"]["augmentation"], self.input_shape[:2],
                        key="linear.augmentation")
        self.eval_transform = build.augmenter("eval", self.input_shape[:2], key="eval")
        self.multi_crop = build.multi_crop(config, self.input_shape[:2], seed=config["seed"])
        for stage in schema.STAGES:
            build.optimizer(config[stage], 1, stage)
        # The dataset of the linear and fine-tuning stages: a transfer one, or this one.
        self.target = ft.load_transfer(config, self.input_shape, log) or ft.Target(
            config["dataset"]["name"], self.train_data, self.test_data, self.info,
            self.train_size, config["dataset"]["test_split"])
        self.transfer = bool(config["transfer"]["dataset"])
        if self.transfer and config["linear"]["batch_size"] > self.target.train_size:
            raise UsageError(
                f"Config key 'linear.batch_size' must be at most the "
                f"{self.target.train_size} images of the training split of "
                f"{self.target.name!r} (every batch is full); received "
                f"{config['linear']['batch_size']}.")
        self.train_classes = None  # Class-balanced pretraining: the classes present.
        if config["pretrain"]["samples_per_class"]:
            self.train_classes, counts = data.balanced.class_counts(self.train_data)
            per_class = config["pretrain"]["samples_per_class"]
            per_batch = config["pretrain"]["batch_size"] // per_class
            if per_batch > len(self.train_classes):
                raise UsageError(
                    f"Config keys 'pretrain.batch_size' / 'pretrain.samples_per_class' ask "
                    f"for {per_batch} classes per batch; the training split has "
                    f"{len(self.train_classes)}.")
            if counts.min() < per_class:
                raise UsageError(
                    f"Config key 'pretrain.samples_per_class' ({per_class}) must be at most "
                    f"the samples of the smallest class of the training split: class "
                    f"{self.train_classes[counts.argmin()]} has {counts.min()}.")
        # A method whose batches are not images alone (image-text) supplies its data,
        # extra constructor arguments, metrics and exports.
        self.adapter = adapters.for_run(self)
        with strategy.scope():
            model = build.method(config, build.encoder(config, self.input_shape),
                                 self.num_classes, total_steps=self.steps_per_epoch("pretrain")
                                 * config["pretrain"]["epochs"], extra=self._method_extra())
        build.check_against_data(config, model, self.train_size)
        # Methods with a row per training sample (InstDisc's memory bank) get its index.
        self.sample_index = bool(getattr(model, "sample_index", False))

    def _method_extra(self):
        return self.adapter.model_kwargs() if self.adapter is not None else None

    def steps_per_epoch(self, stage):
        size = self.train_size
        if stage == "pretrain" and self.adapter is not None:
            size = self.adapter.train_size  # e.g. image-caption pairs
        return size // self.config[stage]["batch_size"]

    def path(self, *parts):
        return wd.path(self.workdir, *parts)

    @contextlib.contextmanager
    def output(self, *parts):
        """The path a save that every worker takes part in writes to: the work
        directory's on the chief, a temporary one (deleted afterwards) on the others."""
        if self.chief:
            yield self.path(*parts)
            return
        scratch = tempfile.mkdtemp(prefix="supcon-tf-worker-")
        try:
            yield os.path.join(scratch, *parts)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    # ------------------------------------------------------------------ data

    def _epoch_data(self, stage, policy, kwargs, num_views, augment_on, train=None):
        """`fn(epoch, seed)`: the stage's batches for one epoch, fixed by `seed`, from
        `train` (default: the training split).

        The host augmenter is built afresh with that seed, so an epoch's views do not
        depend on the epochs before it (a resumed run draws what an uninterrupted one
        would, exactly so with `deterministic=True`).
        """
        c = self.config

        def make(epoch, seed):
            del epoch  # The order is a function of the seed alone.
            batch = c[stage]["batch_size"]
            if policy == "eval":  # A fixed transform: computed once, reshuffled per epoch.
                ds = self._transformed_train(train).shuffle(
                    c["dataset"]["shuffle_buffer"], seed=seed, reshuffle_each_iteration=False)
                return ds.batch(batch, drop_remainder=True).prefetch(2)
            augmenter = None
            if augment_on == "host" and stage == "pretrain" and self.multi_crop is not None:
                augmenter = build.multi_crop(c, self.input_shape[:2], seed=seed)
            elif augment_on == "host":
                augmenter = build.augmenter(policy, self.input_shape[:2], kwargs, seed=seed)
            source, shuffle = self.train_data if train is None else train, \
                c["dataset"]["shuffle_buffer"]
            k = c[stage].get("samples_per_class", 0)
            if k:  # P x K batches, in the sampler's order.
                source = data.class_balanced(
                    source, batch // k, k, seed=seed, shuffle_buffer=shuffle,
                    classes=self.train_classes).take(self.steps_per_epoch(stage) * batch)
                shuffle = 0
            ds = data.make_pretrain_dataset(
                source, batch_size=batch, num_views=num_views,
                augmenter=augmenter, augment_on=augment_on,
                shuffle_buffer=shuffle, seed=seed, repeat=False,
                drop_remainder=True, deterministic=c["deterministic"],
                resize=self.resize, sample_index=stage == "pretrain" and self.sample_index)
            # Models of images (the linear and fine-tuning stages, "ce") take one view
            # without its axis; methods of views (a metric loss with one view, too) keep it.
            takes_images = stage in ("linear", "finetune") or c["method"] == "ce"
            return ds.map(_first_view) if takes_images and augment_on == "host" else ds

        return make

    def _transformed_train(self, train=None):
        """The training images (or `train`'s) through the evaluation transform, unbatched;
        cached in memory when they fit in CACHE_BYTES (so small datasets skip the work
        each epoch)."""
        train = self.train_data if train is None else train
        if id(train) not in self._train_cache:
            ds = self.eval_data(train).unbatch()
            if self.train_size * int(np.prod(self.input_shape)) * 4 <= CACHE_BYTES:
                ds = ds.cache()
            self._train_cache[id(train)] = (train, ds)  # Holds `train`: ids stay unique.
        return self._train_cache[id(train)][1]

    def eval_data(self, split_data, batch_size=None):
        return data.make_eval_dataset(
            split_data, batch_size=batch_size or self.config["linear"]["batch_size"],
            transform=self.eval_transform)

    # ---------------------------------------------------------------- models

    def _pretrain_model(self):
        """Stage-1 model (compiled, optimizer built) and its variable list."""
        c = self.config
        with self.strategy.scope():
            encoder = build.encoder(c, self.input_shape)
            multi_view = None
            if c["method"] != "ce" and c["views"]["augment_on"] == "device":
                multi_view = self.multi_crop or views.MultiView(self.pretrain_augmenter,
                                                                c["views"]["num_views"])
            model = build.method(c, encoder, self.num_classes, multi_view,
                                 probe=c["eval"]["online_probe"],
                                 total_steps=self.steps_per_epoch("pretrain")
                                 * c["pretrain"]["epochs"], extra=self._method_extra())
            optimizer = build.optimizer(c["pretrain"], self.steps_per_epoch("pretrain"),
                                        "pretrain")
            model.compile(optimizer=optimizer, steps_per_execution=c["steps_per_execution"])
            optimizer = model.optimizer  # mixed_float16: wrapped for loss scaling
            if self.adapter is not None:
                dummy = self.adapter.dummy_input()
            elif c["method"] == "ce":
                dummy = np.zeros((1, *self.input_shape), "float32")
            elif self.multi_crop is not None:
                dummy = tuple(np.zeros((1, *shape[1:]), "float32") for shape in
                              self.multi_crop.compute_output_shape((1, *self.input_shape)))
            else:
                dummy = np.zeros((1, c["views"]["num_views"], *self.input_shape), "float32")
            model(dummy, training=False)
            optimizer.build(model.trainable_variables)
        return model, list(model.variables) + list(optimizer.variables)

    def _pretrain_fit(self, model, variables, callbacks=()):
        c = self.config
        num_views = 1 if c["method"] == "ce" else c["views"]["num_views"]
        epoch_data = (self.adapter.epoch_data("pretrain") if self.adapter is not None else
                      self._epoch_data("pretrain", c["views"]["policy"], c["views"]["kwargs"],
                                       num_views, c["views"]["augment_on"]))
        return ResumableFit(
            "pretrain", model, variables, epoch_data,
            self.steps_per_epoch("pretrain"), c["pretrain"]["epochs"], c["seed"],
            self.path("checkpoints", "pretrain"), keep=c["keep_checkpoints"],
            checkpoint_every=c["checkpoint_every_steps"], log_dir=self.path("logs"),
            callbacks=callbacks, log=self.log)

    def pretrained(self):
        """The stage-1 model restored from its final checkpoint (built once per run)."""
        if "pretrained" in self._built:
            return self._built["pretrained"]
        model, variables = self._pretrain_model()
        fit = self._pretrain_fit(model, variables)
        if not fit.completed():
            latest = fit.checkpoints.latest()
            done = latest["step"] if latest else 0
            raise UsageError(
                f"Work directory {self.workdir!r} has no finished pretraining (step {done} of "
                f"{fit.total_steps}); run --mode=pretrain (or all) on it first.")
        fit.restore()
        self._built["pretrained"] = model
        return model

    def stage2_path(self, stage, *parts):
        """Where `stage` ("linear", "finetune") writes: the linear stage on the
        pretraining dataset in the run's own layout, others under `stage2/<tag>/`."""
        if stage == "linear" and not self.transfer:
            return self.path(*parts)
        return self.path(ft.STAGE2_DIR, ft.stage_tag(self.config, stage), *parts)

    def _classifier(self):
        """The stage-2 classifier: a linear head on the frozen pretrained encoder."""
        if "classifier" in self._built:
            return self._built["classifier"]
        pretrained = self.pretrained()
        t = self.target
        if self.config["method"] == "ce" and not self.transfer:
            self._built["classifier"] = (pretrained, pretrained, None)
            return pretrained, pretrained, None
        c = self.config
        with self.strategy.scope():
            classifier = methods.LinearClassifier(pretrained.encoder, t.num_classes)
            steps = t.train_size // c["linear"]["batch_size"]
            optimizer = build.optimizer(c["linear"], steps, "linear")
            classifier.compile(optimizer=optimizer,
                               steps_per_execution=c["steps_per_execution"])
            optimizer = classifier.optimizer
            classifier(np.zeros((1, *self.input_shape), "float32"))
            optimizer.build(classifier.trainable_variables)
        variables = list(classifier.head.variables) + list(optimizer.variables)
        fit = ResumableFit(
            "linear", classifier, variables,
            self._epoch_data("linear", c["linear"]["augmentation"], {}, 1, "host", t.train),
            steps, c["linear"]["epochs"], c["seed"] + 1,
            self.stage2_path("linear", "checkpoints", "linear"), keep=c["keep_checkpoints"],
            checkpoint_every=c["checkpoint_every_steps"],
            log_dir=self.stage2_path("linear", "logs"), log=self.log)
        self._built["classifier"] = (pretrained, classifier, fit)
        return pretrained, classifier, fit

    # ---------------------------------------------------------------- stages

    def pretrain(self):
        c = self.config
        model, variables = self._pretrain_model()
        callbacks = []
        if c["eval"]["knn_every_epochs"] and c["method"] != "ce":
            callbacks.append(evaluation.KNNMonitor(
                self.eval_data(self.train_data), self.eval_data(self.test_data),
                every_n_epochs=c["eval"]["knn_every_epochs"], k=c["eval"]["knn_k"],
                temperature=c["eval"]["knn_temperature"]))
        self.training = self._pretrain_fit(model, variables, callbacks)
        if self.adapter is not None and self.chief:
            self.adapter.write(self.path("tokenizer.json"))
        self.training.run()
        self._built["pretrained"] = model
        return model

    def linear(self):
        """Trains (or resumes) stage 2, evaluates it and writes `metrics.json`."""
        pretrained, classifier, fit = self._classifier()
        if fit is not None:
            self.training = fit
            fit.run()  # Ends with the final weights (restored, or trained to the end).
        results = classifier.evaluate(self.eval_data(self.target.test), verbose=0,
                                      return_dict=True)
        metrics = {
            "method": self.config["method"],
            "dataset": self.target.name,
            "test_split": self.target.test_split,
            "linear_top1": float(results["top1"]),
            "linear_top5": float(results["top5"]),
            "test_loss": float(results["loss"]),
        }
        if self.transfer:
            metrics["pretrain_dataset"] = self.config["dataset"]["name"]
        if self.adapter is not None:  # e.g. zero-shot top-1 and image<->text Recall@k
            metrics.update(self.adapter.metrics(pretrained))
        own = getattr(pretrained, "evaluation_metrics", None)
        if own is not None:  # Of the method's own state, e.g. InstDisc's bank kNN top-1.
            metrics.update(own(self.eval_data(self.train_data), self.eval_data(self.test_data)))
        if self.chief:
            # The folder holds the stage's checkpoints already.
            wd.write_json(self.stage2_path("linear", wd.METRICS_FILE), metrics)
            self._summary("linear/test_top1", metrics["linear_top1"])
            self._summary("linear/test_top5", metrics["linear_top5"])
        return metrics

    def finetuning(self):
        """The fine-tuning stage (`cli.finetune.FineTune`), checked when first asked for."""
        if "finetune" not in self._built:
            self._built["finetune"] = ft.FineTune(self)
        return self._built["finetune"]

    def finetune(self):
        """Trains (or resumes) the fine-tuning stage; returns its metrics (and export)."""
        return self.finetuning().execute()

    def _summary(self, tag, value):
        import tensorflow as tf

        writer = summary_writer(self.stage2_path("linear", "logs"), lambda _: None)
        if writer is None:
            return
        with writer.as_default(step=0):
            tf.summary.scalar(tag, value)
        writer.flush()

    def _trained_classifier(self):
        """(pretrained model, classifier) with the finished linear stage's weights."""
        pretrained, classifier, fit = self._classifier()
        if fit is not None:
            if not fit.completed():
                raise UsageError(
                    f"Work directory {self.workdir!r} has no finished linear evaluation; "
                    "run --mode=linear (or all) on it first.")
            fit.restore()
        return pretrained, classifier

    def export(self, overwrite=False):
        """Writes the run's `export.formats` (and `model.keras`) under `export/`; returns it."""
        pretrained, classifier = self._trained_classifier()
        target = self.path("export")
        if os.path.exists(target) and not overwrite:
            raise UsageError(f"Export folder {target!r} already exists; pass --overwrite to "
                             "replace it.")
        try:
            export.check_replaceable(target)
        except ValueError as e:
            raise UsageError(f"--overwrite: {e}") from None
        formats = export.check_formats(self.config["export"]["formats"])
        head = None if self.config["method"] == "ce" else pretrained.head
        if checkpoint.fault("write_error_in_export"):
            raise WriteFailedError(target, "No space left on device (a test fault, "
                                   "SUPCON_TF_FAULT)")
        distribute.barrier(self.strategy)  # Every worker has looked before the chief writes.
        with self.output("export") as folder:
            try:
                if "saved_model" in formats:
                    export.export_saved_model(
                        folder, encoder=pretrained.encoder, head=head,
                        classifier_head=classifier.head, image_shape=self.input_shape,
                        class_names=self.class_names, config=self.config, overwrite=overwrite)
                os.makedirs(folder, exist_ok=True)
                export.write_formats(folder, formats, export.serving_model(
                    pretrained.encoder, head, classifier.head, image_shape=self.input_shape),
                    self.input_shape)
                if self.adapter is not None:
                    self.adapter.export(pretrained, folder, formats)
                if self.config["export"]["keras_file"]:
                    export.save_keras(os.path.join(folder, "model.keras"), classifier,
                                      overwrite=True)
            except files.WRITE_ERRORS as e:  # A full disk: the staged copy is gone.
                raise WriteFailedError(getattr(e, "filename", None) or folder,
                                       files.reason(e)) from e
        return target

    def evaluate(self):
        """The evaluation report and pictures of a trained run, under `eval/`."""
        pretrained, classifier = self._trained_classifier()
        e = self.config["eval"]
        with self.output("eval") as folder:
            written = evaluation.evaluate_run(
                folder, pretrained.encoder, self.eval_data(self.test_data),
                class_names=self.class_names, classifier=classifier, config=self.config,
                sample=e["plot_samples"], projector_sample=e["plot_samples"],
                seed=self.config["seed"], reference_data=self.eval_data(self.train_data),
                head=None if self.config["method"] == "ce" else pretrained.head,
                extra=None if self.adapter is None else self.adapter.metrics(pretrained))
        return {k: v.replace(folder, self.path("eval"), 1) for k, v in written.items()
                if isinstance(v, str)}
