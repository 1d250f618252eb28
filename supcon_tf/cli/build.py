"""Objects from a resolved config: strategy, data, augmenters, models, optimizers.

Every function takes explicit arguments (no flags). Names are looked up in the
package's registries, and keyword-argument dicts are checked against the factory's
signature, so a typo fails here, before training, with the valid choices listed.
"""

import dataclasses
import difflib
import inspect

import keras

from supcon_tf import data, distribute, encoders, methods, optimizers, views
from supcon_tf.cli import say, schema
from supcon_tf.cli.errors import UsageError
from supcon_tf.heads import ProjectionHead


def check_kwargs(where, factory, kwargs, reserved=(), also=()):
    """Raises `UsageError` for keys of `kwargs` that `factory` does not accept.

    A factory taking `**kwargs` accepts anything unless `also` names the callables
    those are passed on to (e.g. a Keras optimizer's base class).
    """
    valid, open_ended = set(), False
    for fn in (factory, *also):
        for name, p in inspect.signature(fn).parameters.items():
            if p.kind == p.VAR_KEYWORD:
                open_ended = open_ended or not also
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self":
                valid.add(name)
    for key in kwargs:
        if key in reserved:
            raise UsageError(f"Config key '{where}.{key}' is set by the command line from "
                             "other keys; remove it.")
        if key not in valid and not open_ended:
            choices = sorted(valid - set(reserved))
            close = difflib.get_close_matches(key, choices, n=1)
            raise UsageError(
                f"Unknown config key '{where}.{key}'."
                + (f" Did you mean '{where}.{close[0]}'?" if close else "")
                + f" Valid keys: {', '.join(choices)}."
            )


# Names only tf.distribute can run, and the one only keras.distribution (JAX) runs:
# refused on another backend rather than ignored.
TF_ONLY_STRATEGIES = ("mirrored", "multi_worker", "tpu")
JAX_ONLY_STRATEGIES = ("data_parallel",)


def get_strategy(name, tpu=None, worker_timeout=None):
    """A `tf.distribute.Strategy` from the `--strategy` name.

    On KERAS_BACKEND=jax, `auto` and `data_parallel` give a
    `keras.distribution.DataParallel` over every device when there are several.
    `auto` on a machine with one CPU or one GPU gives TensorFlow's default strategy
    (`distribute.get_strategy`): it runs on that device without the distributed
    input and step machinery (measured 2-3x faster per epoch on the digits run).
    A multi-worker strategy first waits up to `worker_timeout` seconds for every
    worker of `TF_CONFIG` (`distribute.wait_for_workers`).
    """
    backend = keras.backend.backend()
    if backend != "tensorflow" and name in TF_ONLY_STRATEGIES:
        raise UsageError(
            f"--strategy={name} is a tf.distribute strategy, which the {backend} backend "
            f"cannot take; with KERAS_BACKEND={backend} use --strategy=auto or "
            "data_parallel (every device), cpu or gpu (one device), or run on "
            "KERAS_BACKEND=tensorflow.")
    if backend != "jax" and name in JAX_ONLY_STRATEGIES:
        raise UsageError(
            f"--strategy={name} is keras.distribution's, which runs on KERAS_BACKEND=jax; "
            f"the {backend} backend takes auto, cpu, gpu, mirrored (every local device), "
            "multi_worker (TF_CONFIG) or tpu.")
    try:
        if (worker_timeout and name in distribute.STRATEGIES and backend == "tensorflow"
                and distribute.resolve_name(name, tpu=tpu) == "multi_worker"):
            distribute.wait_for_workers(worker_timeout)
        return distribute.get_strategy(name, tpu=tpu)
    except (ValueError, RuntimeError) as e:  # RuntimeError: a JAX cluster not joined
        raise UsageError(f"--strategy={name}: {e}") from e


# Config keys of the `dataset` section that are loader arguments, and the sources
# they apply to (`data.OPTIONS`); a key set for another source is refused.
LOADER_KEYS = ("data_dir", "download", "image_size", "to_rgb", "corrupt", "label_key")
SOURCES = {"digits": "the bundled digits", "folder": "image folders (folder:/path)",
           "npz": "NumPy files (npz:/path.npz)", "tfds": "TFDS datasets"}
# Rule for the training size of images that vary in size (folders): the median of
# the images' shorter sides, at most MAX_AUTO_SIZE, as a square.
MAX_AUTO_SIZE = 224


def _override(key, value, split=None):
    """`--config.dataset.KEY=VALUE` for a loader argument (`split` is `split`'s key)."""
    key = split if key == "split" and split else key
    if isinstance(value, tuple):
        return f"--config.dataset.{key}='{value}'"
    return f"--config.dataset.{key}={value}"


def loader_options(dataset):
    """The loader's keyword arguments from the `dataset` section; `UsageError` for a
    key set (away from its default) for a source it does not apply to."""
    try:
        kind, _ = data.source(dataset["name"])
    except ValueError as e:
        raise UsageError(f"Config key 'dataset.name': {e}") from e
    defaults = schema.default_values()["dataset"]
    options = {}
    for key in LOADER_KEYS:
        value = dataset[key]
        if key in data.OPTIONS[kind]:
            options[key] = tuple(value) if isinstance(value, list) else value
        elif value != defaults[key]:
            where = " and ".join(SOURCES[k] for k in SOURCES if key in data.OPTIONS[k])
            raise UsageError(
                f"Config key 'dataset.{key}' applies to {where} only, not to dataset "
                f"{dataset['name']!r}; received {value!r}. Remove {_override(key, value)}.")
    return options


def load_data(dataset, log=say):
    """(train, test, info) for the `dataset` section of a config; logs skipped files."""
    options = loader_options(dataset)
    loaded = []
    for key in ("train_split", "test_split"):
        split = dataset[key]
        try:
            ds, info = data.load(dataset["name"], split=split, **options)
        except data.DataError as e:
            raise UsageError(f"Config key 'dataset': {e.render(_override, split=key)}") from e
        except ValueError as e:
            raise UsageError(f"Config key 'dataset': {e}") from e
        if info.skipped:
            log(f"[data] dataset.corrupt=skip: skipped {len(info.skipped)} corrupt image "
                f"file(s) of split {split!r}: {', '.join(info.skipped[:5])}"
                + (" ..." if len(info.skipped) > 5 else ""))
        loaded.append((ds, info))
    (train, info), (test, test_info) = loaded
    test_size = test_info.split_sizes.get(dataset["test_split"])
    if test_size is not None:  # Each loader counts its own split exactly (corrupt skipped).
        info = dataclasses.replace(info, split_sizes={**info.split_sizes,
                                                      dataset["test_split"]: test_size})
    return train, test, info


def image_shape(config, info, log=say):
    """(H, W, C) of the encoder's input: `views.image_size`, else the dataset's images.

    Images that vary in size, with their sizes known (a folder), train at a square of
    the median of their shorter sides, at most `MAX_AUTO_SIZE` (the rule and the size
    are logged); otherwise the exact flag to add is the error.
    """
    height, width, channels = info.image_shape
    if config["views"]["image_size"] is not None:
        height, width = config["views"]["image_size"]
    elif height is None or width is None:
        if not info.image_sizes:
            raise UsageError(
                f"Config key 'views.image_size' must be set: the images of dataset "
                f"{info.name!r} vary in size. Add --config.views.image_size='(224, 224)' "
                f"(or the size to train at).")
        sides = sorted(s for (h, w), n in info.image_sizes.items() for s in [min(h, w)] * n)
        height = width = min(MAX_AUTO_SIZE, sides[(len(sides) - 1) // 2])
        smallest, largest = (min(info.image_sizes, key=lambda hw: hw[0] * hw[1]),
                             max(info.image_sizes, key=lambda hw: hw[0] * hw[1]))
        log(f"[data] views.image_size is unset and the {len(sides)} training images vary in "
            f"size ({len(info.image_sizes)} sizes, {smallest[0]}x{smallest[1]} to "
            f"{largest[0]}x{largest[1]}): training at {height}x{width}, the median shorter "
            f"side (at most {MAX_AUTO_SIZE}). Set --config.views.image_size='(H, W)' to "
            f"choose.")
    return (int(height), int(width), int(channels))


def augmenter(policy, size, kwargs=None, seed=None, key="views.policy",
              kwargs_key="views.kwargs"):
    """The augmentation policy `policy` for images of `size` (H, W), seeded with `seed`."""
    kwargs = dict(kwargs or {})
    if policy in views.POLICIES:
        check_kwargs(kwargs_key, views.POLICIES.lookup(policy), kwargs,
                     reserved=("image_size", "seed"))
    try:
        return views.get(policy, image_size=tuple(size), seed=seed, **kwargs)
    except (ValueError, TypeError) as e:
        raise UsageError(f"Config key {key!r}: {e}") from e


def uses_multicrop(config):
    return config["method"] != "ce" and config["views"]["multicrop"]["local_views"] > 0


def multi_crop(config, size, seed=None):
    """`views.MultiCrop` of the config's policy for images of `size` (H, W): num_views
    global crops of `size`, `multicrop.local_views` local ones; None when that is 0."""
    if not uses_multicrop(config):
        return None
    v, m = config["views"], config["views"]["multicrop"]
    local_size = m["local_size"] or tuple(max(1, s // 2) for s in size)
    if v["policy"] in views.POLICIES:
        check_kwargs("views.kwargs", views.POLICIES.lookup(v["policy"]), v["kwargs"],
                     reserved=("image_size", "seed", "area_range"))
    try:
        return views.MultiCrop(tuple(size), tuple(local_size), v["num_views"],
                               m["local_views"], tuple(m["global_scale"]),
                               tuple(m["local_scale"]), policy=v["policy"],
                               policy_kwargs=v["kwargs"], seed=seed)
    except (ValueError, TypeError) as e:
        raise UsageError(f"Config key 'views.multicrop': {e}") from e


def encoder(config, input_shape):
    """The encoder named in the config, for images of `input_shape` (of any height and
    width with multi-crop views, whose groups differ in size)."""
    if uses_multicrop(config):
        input_shape = (None, None, input_shape[-1])
    name, kwargs = config["encoder"]["name"], dict(config["encoder"]["kwargs"])
    if name in encoders.ENCODERS:
        check_kwargs("encoder.kwargs", encoders.ENCODERS.lookup(name), kwargs,
                     reserved=("input_shape",))
    try:
        return encoders.get(name, input_shape=tuple(input_shape), **kwargs)
    except ValueError as e:
        raise UsageError(f"Config key 'encoder': {e}") from e


def head(config):
    h = config["head"]
    return ProjectionHead(hidden_dims=h["hidden_dims"], output_dim=h["output_dim"],
                          use_batch_norm=h["use_batch_norm"],
                          sync_batch_norm=h["sync_batch_norm"],
                          output_batch_norm=h["output_batch_norm"], normalize=h["normalize"],
                          activation=h["activation"])


def loss(config, num_classes=None):
    """The method's loss (its class's `default_loss`), with `loss` as its arguments.

    A method with a `resolve_loss(kwargs) -> (loss class, kwargs)` (method "metric")
    picks its loss by the config's `loss.name`; the other keys are checked against it.
    A loss with one parameter per class (proxy-anchor's `num_classes`) takes the
    dataset's `num_classes` when the config leaves it out, and refuses fewer.
    """
    method_cls = methods.METHODS.lookup(config["method"])
    cls, kwargs = method_cls.default_loss, dict(config["loss"])
    if hasattr(method_cls, "resolve_loss"):
        try:
            cls, kwargs = method_cls.resolve_loss(kwargs)
        except ValueError as e:
            raise UsageError(f"Config key 'loss.name': {e}") from e
    check_kwargs("loss", cls.__init__, kwargs, reserved=("name", "dtype"))
    if num_classes is not None and "num_classes" in inspect.signature(cls.__init__).parameters:
        given = kwargs.setdefault("num_classes", num_classes)
        if isinstance(given, int) and given < num_classes:
            raise UsageError(
                f"Config key 'loss.num_classes' ({given}) must be at least the dataset's "
                f"{num_classes} classes (one proxy per class; labels beyond the proxies would "
                f"train as negatives of every class). Set --config.loss.num_classes="
                f"{num_classes} or leave the key out to take the dataset's.")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise UsageError(f"Config key 'loss': {e}") from e


# Arguments of a method's constructor that the command line sets from other keys.
METHOD_RESERVED = ("encoder", "head", "loss", "augmenter", "probe", "total_steps")


def method(config, encoder_model, num_classes, multi_view=None, probe=False,
           total_steps=None, extra=None):
    """The stage-1 model: any registered method (with an online linear probe on
    request), or the cross-entropy classifier.

    `method_kwargs` go to the method's constructor, checked against its signature;
    a method whose constructor takes `total_steps` (e.g. a momentum schedule over
    training) gets the stage's number of steps; `extra` are arguments built from the
    data (an image-text method's tokenizer, `cli.adapters`).
    """
    if config["method"] == "ce":
        return methods.CrossEntropyClassifier(encoder_model, num_classes=num_classes)
    cls = methods.METHODS.lookup(config["method"])
    kwargs = dict(config.get("method_kwargs") or {})
    check_kwargs("method_kwargs", cls.__init__, kwargs, reserved=METHOD_RESERVED,
                 also=(methods.ContrastiveModel.__init__,))
    kwargs.update(extra or {})
    if probe:
        kwargs["probe"] = num_classes
    if total_steps is not None and "total_steps" in inspect.signature(cls.__init__).parameters:
        kwargs["total_steps"] = int(total_steps)
    try:
        return cls(encoder=encoder_model, head=head(config), loss=loss(config, num_classes),
                   augmenter=multi_view, **kwargs)
    except (ValueError, TypeError) as e:
        raise UsageError(f"Config key 'method_kwargs' (method {config['method']!r}): {e}") from e


def check_against_data(config, model, train_size):
    """Settings that must agree with the data, checked before training (a range check on
    values inside a compiled step does nothing): the kNN monitor's `k` against the
    reference (training) set, a queue (MoCo's keys, SwAV's features, NNCLR's support set)
    against the global batch it takes each step, a memory bank (InstDisc's) against the
    training split, one row per sample."""
    ev = config.get("eval") or {}
    if ev.get("knn_every_epochs") and ev.get("knn_k", 0) > train_size:
        raise UsageError(f"Config key 'eval.knn_k' ({ev['knn_k']}) must be at most the "
                         f"{train_size} images of the training split (the kNN references).")
    queue_size = getattr(model, "queue_size", 0) or 0
    rows = config["pretrain"]["batch_size"] * (2 if getattr(model, "symmetric", False) else 1)
    if 0 < queue_size < rows:
        raise UsageError(
            f"Config key 'method_kwargs.queue_size' ({queue_size}) must be at least the "
            f"{rows} rows the global batch enqueues each step (pretrain.batch_size "
            f"{config['pretrain']['batch_size']}"
            + (" x 2 views, symmetric" if rows != config["pretrain"]["batch_size"] else "")
            + "); raise it or lower the batch size.")
    bank_size = getattr(model, "bank_size", None)  # InstDisc's memory bank: a row a sample.
    if bank_size is not None and bank_size != train_size:
        raise UsageError(
            f"Config key 'method_kwargs.bank_size' ({bank_size}) must equal the {train_size} "
            "images of the training split (one memory-bank row per sample); set "
            f"--config.method_kwargs.bank_size={train_size}.")
    if bank_size is not None and config["pretrain"].get("samples_per_class"):
        raise UsageError(
            "Config key 'pretrain.samples_per_class' cannot be used with method "
            f"{config['method']!r}: its batches carry each sample's index in the training "
            "split, which class-balanced sampling does not keep; set it to 0.")
    xbm_size = getattr(model, "xbm_size", 0) or 0  # MetricLearning's cross-batch memory.
    rows = config["pretrain"]["batch_size"] * config["views"]["num_views"]
    if 0 < xbm_size < rows:
        raise UsageError(
            f"Config key 'method_kwargs.xbm_size' ({xbm_size}) must be at least the {rows} "
            "embeddings the global batch enqueues each step (pretrain.batch_size x "
            "views.num_views); raise it or lower the batch size.")


def scaled_learning_rate(stage):
    """The stage's learning rate after its batch-size scaling rule."""
    lr, batch, rule = stage["learning_rate"], stage["batch_size"], stage["lr_scaling"]
    return float(optimizers.scale_learning_rate(lr, batch, rule))


def learning_rate(stage, steps_per_epoch):
    """A float or schedule: linear warmup then cosine decay, or constant."""
    peak = scaled_learning_rate(stage)
    if stage["schedule"] == "constant":
        return peak
    total = max(1, stage["epochs"] * steps_per_epoch)
    warmup = min(total - 1, int(round(stage["warmup_epochs"] * steps_per_epoch)))
    return optimizers.WarmupCosine(peak, total, warmup)


def _base_optimizer_init():
    """The `__init__` that defines Keras optimizers' shared arguments (clipnorm, ...)."""
    for cls in keras.optimizers.Optimizer.__mro__:
        if cls.__name__ == "BaseOptimizer":
            return cls.__init__
    return keras.optimizers.Optimizer.__init__


def optimizer_names():
    return optimizers.OPTIMIZERS.names()


def optimizer(stage, steps_per_epoch, where):
    """The stage's optimizer (LARS, SGD, Adam, ...) with its learning-rate schedule."""
    name, kwargs = stage["optimizer"], dict(stage["optimizer_kwargs"])
    if name not in optimizer_names():
        close = difflib.get_close_matches(name, optimizer_names(), n=1)
        raise UsageError(
            f"Unknown optimizer {name!r} in config key '{where}.optimizer'."
            + (f" Did you mean {close[0]!r}?" if close else "")
            + f" Valid optimizer names: {', '.join(optimizer_names())}."
        )
    lr = learning_rate(stage, steps_per_epoch)
    factory = optimizers.OPTIMIZERS.lookup(name)
    check_kwargs(f"{where}.optimizer_kwargs", factory, kwargs,
                 reserved=("learning_rate", "weight_decay"),
                 also=(_base_optimizer_init(),))
    if stage["weight_decay"]:
        kwargs["weight_decay"] = stage["weight_decay"]
    try:
        return factory(learning_rate=lr, **kwargs)
    except (ValueError, TypeError) as e:
        raise UsageError(f"Config key '{where}.optimizer_kwargs': {e}") from e


def current_learning_rate(opt):
    """The optimizer's learning rate at its current step, as a float."""
    lr = opt.learning_rate
    if isinstance(opt._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        lr = opt._learning_rate(opt.iterations)
    return float(keras.ops.convert_to_numpy(lr))
