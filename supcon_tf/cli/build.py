"""Objects from a resolved config: strategy, data, augmenters, models, optimizers.

Every function takes explicit arguments (no flags). Names are looked up in the
package's registries, and keyword-argument dicts are checked against the factory's
signature, so a typo fails here, before training, with the valid choices listed.
"""

import difflib
import inspect

import keras

from supcon_tf import data, distribute, encoders, methods, optimizers, views
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


# Names only tf.distribute can run: refused on another backend rather than ignored.
TF_ONLY_STRATEGIES = ("mirrored", "multi_worker", "tpu")


def get_strategy(name, tpu=None, worker_timeout=None):
    """A `tf.distribute.Strategy` from the `--strategy` name.

    `auto` on a machine with one CPU or one GPU gives TensorFlow's default strategy
    (`distribute.get_strategy`): it runs on that device without the distributed
    input and step machinery (measured 2-3x faster per epoch on the digits run).
    A multi-worker strategy first waits up to `worker_timeout` seconds for every
    worker of `TF_CONFIG` (`distribute.wait_for_workers`).
    """
    if keras.backend.backend() != "tensorflow" and name in TF_ONLY_STRATEGIES:
        raise UsageError(
            f"--strategy={name} is a tf.distribute strategy, which the "
            f"{keras.backend.backend()} backend cannot take; with KERAS_BACKEND="
            f"{keras.backend.backend()} use --strategy=auto (one device), or run on "
            "KERAS_BACKEND=tensorflow.")
    try:
        if worker_timeout and distribute.resolve_name(name, tpu=tpu) == "multi_worker":
            distribute.wait_for_workers(worker_timeout)
        return distribute.get_strategy(name, tpu=tpu)
    except ValueError as e:
        raise UsageError(f"--strategy={name}: {e}") from e


def load_data(dataset):
    """(train, test, info) for the `dataset` section of a config."""
    try:
        train, info = data.load(dataset["name"], split=dataset["train_split"],
                                data_dir=dataset["data_dir"])
        test, _ = data.load(dataset["name"], split=dataset["test_split"],
                            data_dir=dataset["data_dir"])
    except ValueError as e:
        raise UsageError(f"Config key 'dataset': {e}") from e
    return train, test, info


def image_shape(config, info):
    """(H, W, C) of the encoder's input: `views.image_size` or the dataset's images."""
    height, width, channels = info.image_shape
    if config["views"]["image_size"] is not None:
        height, width = config["views"]["image_size"]
    if height is None or width is None:
        raise UsageError(f"Config key 'views.image_size' must be set (height, width): the "
                         f"images of dataset {info.name!r} vary in size.")
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
                          output_batch_norm=h["output_batch_norm"], normalize=h["normalize"])


def loss(config):
    """The method's loss (its class's `default_loss`), with `loss` as its arguments.

    A method with a `resolve_loss(kwargs) -> (loss class, kwargs)` (method "metric")
    picks its loss by the config's `loss.name`; the other keys are checked against it.
    """
    method_cls = methods.METHODS.lookup(config["method"])
    cls, kwargs = method_cls.default_loss, dict(config["loss"])
    if hasattr(method_cls, "resolve_loss"):
        try:
            cls, kwargs = method_cls.resolve_loss(kwargs)
        except ValueError as e:
            raise UsageError(f"Config key 'loss.name': {e}") from e
    check_kwargs("loss", cls.__init__, kwargs, reserved=("name", "dtype"))
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise UsageError(f"Config key 'loss': {e}") from e


# Arguments of a method's constructor that the command line sets from other keys.
METHOD_RESERVED = ("encoder", "head", "loss", "augmenter", "probe", "total_steps")


def method(config, encoder_model, num_classes, multi_view=None, probe=False,
           total_steps=None):
    """The stage-1 model: any registered method (with an online linear probe on
    request), or the cross-entropy classifier.

    `method_kwargs` go to the method's constructor, checked against its signature;
    a method whose constructor takes `total_steps` (e.g. a momentum schedule over
    training) gets the stage's number of steps.
    """
    if config["method"] == "ce":
        return methods.CrossEntropyClassifier(encoder_model, num_classes=num_classes)
    cls = methods.METHODS.lookup(config["method"])
    kwargs = dict(config.get("method_kwargs") or {})
    check_kwargs("method_kwargs", cls.__init__, kwargs, reserved=METHOD_RESERVED,
                 also=(methods.ContrastiveModel.__init__,))
    if probe:
        kwargs["probe"] = num_classes
    if total_steps is not None and "total_steps" in inspect.signature(cls.__init__).parameters:
        kwargs["total_steps"] = int(total_steps)
    try:
        return cls(encoder=encoder_model, head=head(config), loss=loss(config),
                   augmenter=multi_view, **kwargs)
    except (ValueError, TypeError) as e:
        raise UsageError(f"Config key 'method_kwargs' (method {config['method']!r}): {e}") from e


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
