"""Every key a run config may hold, its default and its type, and the checks on them.

A config file sets what its experiment needs; `resolve` fills the rest from
`defaults()`, rejects keys that do not exist (naming the closest) and values of the
wrong type, and checks the names and ranges that can be checked without building
anything. Sub-dicts listed in `OPEN_DICTS` hold keyword arguments of a factory
(encoder, augmentation policy, loss, optimizer); their keys are checked against
that factory's signature when the objects are built (`supcon_tf.cli.build`).
"""

import difflib

import ml_collections

from supcon_tf.cli.errors import UsageError

# "ce" is the cross-entropy baseline; every other name is a registered contrastive
# method (`supcon_tf.methods.METHODS`), built generically by `supcon_tf.cli.build`.
BASELINES = ("ce",)


def method_names():
    """Every valid `method`: the registered contrastive methods and the baselines."""
    from supcon_tf.methods import METHODS  # Lazy: keeps this module import-light.

    return tuple(METHODS.names()) + BASELINES

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
AUGMENT_ON = ("host", "device")
LR_SCALING = ("none", "linear", "sqrt")
SCHEDULES = ("cosine", "constant")
CORRUPT = ("error", "skip")

# Keys whose value is a dict of keyword arguments for a factory named elsewhere.
OPEN_DICTS = ("encoder.kwargs", "views.kwargs", "loss", "method_kwargs", "captions",
              "pretrain.optimizer_kwargs",
              "linear.optimizer_kwargs", "finetune.optimizer_kwargs")
# Keys whose default is None: the types they accept (the first is the type a
# --config.KEY=VALUE override is parsed as, see `typed`).
NULLABLE = {
    "dataset.data_dir": (str,),
    "dataset.label_key": (str,),
    "dataset.image_size": (tuple, list),
    "views.image_size": (tuple, list),
    "head.hidden_dims": (tuple, list),
    "views.multicrop.local_size": (tuple, list),
    "transfer.data_dir": (str,),
}
# Sections that change only what is trained after pretraining (the fine-tuning stage,
# a transfer dataset): a stage-2 mode on a pretrained work directory may set them to
# other values than the run recorded (`supcon_tf.cli.finetune`).
STAGE2_SECTIONS = ("finetune", "transfer")
# The stages trained with their own optimizer: the keys of `_stage` each.
STAGES = ("pretrain", "linear", "finetune")


def _stage(epochs, batch_size, optimizer, learning_rate):
    return dict(epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                optimizer_kwargs={}, learning_rate=learning_rate, lr_scaling="none",
                warmup_epochs=0.0, weight_decay=0.0, schedule="cosine")


def defaults():
    """The full config with every key at its default (the digits SupCon run)."""
    return ml_collections.ConfigDict(default_values())


def default_values():
    """`defaults()` as a new plain dict (cheaper than the ConfigDict: built per call)."""
    return dict(
        method="supcon",
        method_kwargs={},  # the method's own arguments (e.g. MoCo's queue_size)
        captions={},  # image-text methods' captions and templates (cli.adapters)
        seed=0,
        precision="float32",
        deterministic=False,  # deterministic TF ops and data order: bit-exact resumes
        steps_per_execution=1,
        checkpoint_every_steps=0,  # 0: checkpoint at the end of every epoch only
        keep_checkpoints=2,
        # What the loaders take (`supcon_tf.data.OPTIONS`): data_dir, download and
        # label_key (the class of a dataset that is not image-classification, e.g.
        # "objects/label" of coco_captions) for TFDS; corrupt ("error" or "skip") for
        # folders; image_size (resize at load time) and to_rgb (grayscale -> RGB) for
        # every source (digits, TFDS, folder:, npz:).
        dataset=dict(name="digits", data_dir=None, download=False, train_split="train",
                     test_split="test", shuffle_buffer=10_000, image_size=None,
                     to_rgb=False, corrupt="error", label_key=None),
        encoder=dict(name="small_cnn", kwargs={}),
        head=dict(hidden_dims=None, output_dim=128, use_batch_norm=True,
                  sync_batch_norm=False, output_batch_norm=False,
                  normalize=True,  # normalize: False for BYOL and SimSiam
                  activation="relu"),  # of the hidden layers: "relu" or "gelu" (DINO)
        loss={},
        # multicrop.local_views > 0: num_views global crops of image_size and that many
        # local crops of local_size (None: half the image size), views.MultiCrop.
        views=dict(policy="simclr", num_views=2, augment_on="host", image_size=None,
                   kwargs={}, multicrop=dict(local_views=0, local_size=None,
                                             global_scale=(0.14, 1.0),
                                             local_scale=(0.05, 0.14))),
        # samples_per_class K > 0: class-balanced batches of batch_size / K classes x K.
        pretrain=dict(_stage(100, 256, "sgd", 0.1), samples_per_class=0),
        linear=dict(_stage(30, 256, "sgd", 0.1), augmentation="eval"),
        # Fine-tuning (SimCLR Sec. 6 / its `train_mode=finetune`) on a class-balanced
        # subset of the labels: labels_per_class > 0 per class, else label_fraction of
        # each class. fine_tune_after_block: blocks 0..k stay frozen (-1: none, see
        # encoders.blocks); keep_head_layers: the projection head's first layers kept
        # under the new linear head (1: SimCLR's best setting); head_weight_decay:
        # whether weight_decay also applies to the head. enabled: a step of --mode=all.
        # from_scratch: the supervised baseline on the same labels (a fresh encoder).
        finetune=dict(_stage(30, 256, "sgd", 0.05), enabled=False, label_fraction=0.1,
                      labels_per_class=0, fine_tune_after_block=-1, keep_head_layers=0,
                      head_weight_decay=False, augmentation="eval", from_scratch=False),
        # Another dataset for --mode=linear / --mode=finetune ("" = the pretraining
        # one): a name as dataset.name takes; images are resized to the encoder's size.
        transfer=dict(dataset="", train_split="train", test_split="test", data_dir=None),
        eval=dict(knn_every_epochs=0, knn_k=200, knn_temperature=0.1, online_probe=False,
                  plots=True, plot_samples=2000),
        # formats: any of "saved_model", "onnx" (pip install "supcon-tf[onnx]"), "litert".
        export=dict(enabled=True, keras_file=True, formats=("saved_model",)),
    )


def typed(config):
    """`config` (a ConfigDict, changed in place) holding every key of `defaults()`, so
    that --config.KEY=VALUE can set any of them: keys it lacks at their defaults, and
    keys at None as placeholders of their `NULLABLE` type (ml_collections cannot parse
    an override of a plain None). Sections of the wrong type are left to `resolve`."""
    for path, default in flatten(default_values()).items():
        *parents, leaf = path.split(".")
        holder = config
        for key in parents:
            if key not in holder:
                holder[key] = ml_collections.ConfigDict()
            holder = holder[key]
            if not isinstance(holder, ml_collections.ConfigDict):
                break
        else:
            if leaf not in holder:
                holder[leaf] = default
            if path in NULLABLE and holder.get_type(leaf) is type(None):
                holder[leaf] = ml_collections.config_dict.placeholder(NULLABLE[path][0])
    return config


def flatten(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in OPEN_DICTS:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def closest_key(path, known):
    """The known key closest to `path`: by the full dotted path, else by its last part."""
    close = difflib.get_close_matches(path, known, n=1, cutoff=0.6)
    if close:
        return close[0]
    section, _, leaf = path.rpartition(".")
    leaves = {}
    for key in known:  # Prefer a key in the same section.
        k_section, _, k_leaf = key.rpartition(".")
        if k_leaf not in leaves or k_section == section:
            leaves[k_leaf] = key
    close = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.6)
    return leaves[close[0]] if close else None


def _type_ok(path, value, default):
    if path in NULLABLE:
        return value is None or isinstance(value, NULLABLE[path])
    if path in OPEN_DICTS:
        return isinstance(value, dict)
    if isinstance(default, tuple):  # Pairs; a config saved as JSON holds them as lists.
        return isinstance(value, (tuple, list))
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(default))


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               tuple: "a tuple", list: "a list", dict: "a dict"}


def _type_name(path, default):
    if path in NULLABLE:
        return " or ".join(_TYPE_NAMES[t] for t in NULLABLE[path]) + " or None"
    if path in OPEN_DICTS:
        return "a dict"
    return _TYPE_NAMES.get(type(default), type(default).__name__)


def _set(tree, path, value):
    *parents, leaf = path.split(".")
    for key in parents:
        tree = tree[key]
    tree[leaf] = value


def resolve(config):
    """The config merged over `defaults()`, as a plain dict; raises `UsageError`."""
    given = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    known = flatten(default_values())
    merged = default_values()
    for path, value in flatten(given).items():
        if value == {} and any(k.startswith(path + ".") for k in known):
            continue  # An empty section: all defaults.
        if path not in known:
            hint = closest_key(path, known)
            raise UsageError(
                f"Unknown config key {path!r}."
                + (f" Did you mean {hint!r}?" if hint else "")
                + f" Valid keys: {', '.join(sorted(known))}."
            )
        if not _type_ok(path, value, known[path]):
            raise UsageError(
                f"Config key {path!r} must be {_type_name(path, known[path])}; received "
                f"{value!r} of type {type(value).__name__}."
            )
        if isinstance(known[path], float) and isinstance(value, int):
            value = float(value)
        _set(merged, path, value)
    _check_values(merged)
    return merged


def _choice(path, value, choices):
    if value not in choices:
        raise UsageError(
            f"Config key {path!r} must be one of {', '.join(repr(c) for c in choices)}; "
            f"received {value!r}."
        )


def _positive(path, value, allow_zero=False):
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UsageError(f"Config key {path!r} must be {bound}; received {value!r}.")


def _check_values(c):
    _choice("method", c["method"], method_names())
    _choice("precision", c["precision"], PRECISIONS)
    _choice("views.augment_on", c["views"]["augment_on"], AUGMENT_ON)
    _choice("dataset.corrupt", c["dataset"]["corrupt"], CORRUPT)
    from supcon_tf.heads.projection import ACTIVATIONS  # Lazy, as `method_names`.

    _choice("head.activation", c["head"]["activation"], ACTIVATIONS)
    for path in ("steps_per_execution", "keep_checkpoints", "views.num_views",
                 "head.output_dim", "dataset.shuffle_buffer", "eval.knn_k",
                 "eval.knn_temperature", "eval.plot_samples"):
        section, _, key = path.rpartition(".")
        _positive(path, (c[section] if section else c)[key])
    _positive("checkpoint_every_steps", c["checkpoint_every_steps"], allow_zero=True)
    _positive("views.multicrop.local_views", c["views"]["multicrop"]["local_views"],
              allow_zero=True)
    _positive("eval.knn_every_epochs", c["eval"]["knn_every_epochs"], allow_zero=True)
    for stage in STAGES:
        s = c[stage]
        for key in ("epochs", "batch_size", "learning_rate"):
            _positive(f"{stage}.{key}", s[key])
        for key in ("warmup_epochs", "weight_decay"):
            _positive(f"{stage}.{key}", s[key], allow_zero=True)
        _choice(f"{stage}.lr_scaling", s["lr_scaling"], LR_SCALING)
        _choice(f"{stage}.schedule", s["schedule"], SCHEDULES)
    k, batch = c["pretrain"]["samples_per_class"], c["pretrain"]["batch_size"]
    if k and (k < 2 or batch % k):
        raise UsageError(
            "Config key 'pretrain.samples_per_class' must be 0 (plain shuffled batches) or "
            f"an integer >= 2 that divides pretrain.batch_size={batch}; received {k}.")
    _positive("pretrain.samples_per_class", k, allow_zero=True)
    f = c["finetune"]
    if not 0.0 < f["label_fraction"] <= 1.0:
        raise UsageError("Config key 'finetune.label_fraction' must be in (0, 1] (the share "
                         f"of each class's labels, e.g. 0.01 or 0.1); received "
                         f"{f['label_fraction']!r}.")
    _positive("finetune.labels_per_class", f["labels_per_class"], allow_zero=True)
    _positive("finetune.keep_head_layers", f["keep_head_layers"], allow_zero=True)
    if f["fine_tune_after_block"] < -1:
        raise UsageError("Config key 'finetune.fine_tune_after_block' must be -1 (train every "
                         "block) or the index of the last frozen block (0: the stem); "
                         f"received {f['fine_tune_after_block']!r}.")
    for path in ("views.image_size", "dataset.image_size"):
        section, _, key = path.partition(".")
        size = c[section][key]
        if size is not None and (len(size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise UsageError(
                f"Config key {path!r} must be None or two positive ints (height, width), "
                f"e.g. --config.{path}='(224, 224)'; received {size!r}.")
    if c["method"] not in BASELINES:
        from supcon_tf.methods import METHODS

        try:
            min_views = METHODS.lookup(c["method"]).views_needed(c.get("method_kwargs") or {})
        except ValueError as e:  # An unknown name in method_kwargs (e.g. the extraction).
            raise UsageError(f"Config key 'method_kwargs': {e}") from None
        if c["views"]["num_views"] < min_views:
            raise UsageError(
                f"Config key 'views.num_views' must be >= {min_views} for method "
                f"{c['method']!r}; received {c['views']['num_views']}."
            )
    if c["export"]["enabled"]:
        from supcon_tf.export.formats import check_formats

        try:
            c["export"]["formats"] = check_formats(c["export"]["formats"])
        except ValueError as e:
            raise UsageError(str(e)) from None
    if c["method"] == "ce" and c["views"]["multicrop"]["local_views"]:
        raise UsageError(
            "Config key 'views.multicrop.local_views' must be 0 for method 'ce' (the cross-"
            f"entropy baseline takes single images); received "
            f"{c['views']['multicrop']['local_views']}.")
    if c["method"] == "ce" and c["views"]["augment_on"] != "host":
        raise UsageError(
            "Config key 'views.augment_on' must be 'host' for method 'ce' (the cross-"
            "entropy baseline takes augmented images from tf.data); received "
            f"{c['views']['augment_on']!r}."
        )
