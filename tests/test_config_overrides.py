"""Every key of every config in configs/ can be set from the command line.

Each key is overridden through the real flag parsing (`define_config_flag` in a
fresh absl `FlagValues`, as `supcon-tf` defines `--config`) with a valid value of
its type, different from its default where one exists, and the resolved config
must carry that value. In-process: one flag parse per key, no subprocess.
"""

import inspect
import os
import re

import pytest
from absl import flags

from supcon_tf import encoders, methods, views
from supcon_tf.cli import adapters, build, config_files, schema
from supcon_tf.cli.config_flag import parse_config as parse
from supcon_tf.cli.errors import UsageError

# Valid values for keys whose valid values are names; the first one unlike the default.
NAMES = {
    "dataset.name": ["cifar10", "folder:/photos"],
    "dataset.train_split": ["train[:90%]", "train"],
    "dataset.test_split": ["train[90%:]", "test"],
    "dataset.data_dir": ["/data/tfds"],
    "dataset.label_key": ["objects/label", "label"],
    "export.formats": [("saved_model", "litert")],  # Both written without an extra.
    "dataset.corrupt": list(schema.CORRUPT),
    "encoder.name": ["resnet18", "small_cnn"],
    "views.policy": ["simclr", "cifar"],
    "views.augment_on": list(schema.AUGMENT_ON),
    "linear.augmentation": ["eval", "simclr"],
    "finetune.augmentation": ["simclr", "eval"],
    "finetune.optimizer": ["adam", "sgd"],
    "finetune.lr_scaling": list(schema.LR_SCALING),
    "finetune.schedule": list(schema.SCHEDULES),
    "finetune.fine_tune_after_block": [0, -1],
    "transfer.dataset": ["cifar10", ""],
    "transfer.train_split": ["train[:90%]", "train"],
    "transfer.test_split": ["train[90%:]", "test"],
    "pretrain.optimizer": ["adam", "lars"],
    "linear.optimizer": ["adam", "sgd"],
    "pretrain.lr_scaling": list(schema.LR_SCALING),
    "linear.lr_scaling": list(schema.LR_SCALING),
    "pretrain.schedule": list(schema.SCHEDULES),
    "linear.schedule": list(schema.SCHEDULES),
    "precision": list(schema.PRECISIONS),
    "method": ["simclr", "supcon"],
    "loss.name": ["triplet", "multi_similarity"],
    "encoder.kwargs.stem": ["imagenet", "cifar"],
    "method_kwargs.momentum_schedule": ["constant", "cosine"],
    "method_kwargs.normalizer": ["first_batch", "per_sample"],
    "loss.distance": ["squared_l2", "cosine"],
    "loss.mining": ["batch_hard", "semi_hard"],
    "head.activation": ["gelu", "relu"],
    "captions.captions_file": ["other.csv"],
    "captions.caption_key": ["captions/id"],
    "captions.class_names": [tuple("abcdefghij")],
    "captions.prompt_templates": [("a {}", "the {}")],
    "transfer.data_dir": ["/data/tfds"],
    "method_kwargs.extraction": ["global", "amdim"],
    "method_kwargs.similarity": ["dot", "scaled_dot"],
    "method_kwargs.extraction_kwargs.source_location": ["all", "random"],
    "method_kwargs.extraction_kwargs.comparisons": [("r1-r5",), ("r1-r5", "r1-r7")],
    "method_kwargs.extraction_kwargs.maps.r1": ["block1", "output"],
    "method_kwargs.extraction_kwargs.maps.r5": ["block1", "stage2"],
    "method_kwargs.extraction_kwargs.maps.r7": ["block1", "stage2"],
    "method_kwargs.extraction_kwargs.maps.last": ["block1", "stage3"],
    "encoder.kwargs.augmentation": ["cpc_patches", "cpc"],
    "encoder.kwargs.encoder": ["small_cnn", "resnet18"],
    "encoder.kwargs.encoder_kwargs.stem": ["imagenet", "cifar"],
    "encoder.kwargs.encoder_kwargs.norm": ["batch", "layer"],
    "method_kwargs.extraction_kwargs.directions": [("down",), ("down", "up")],
}
# Keys at None: a value of their declared type.
SIZES = {"views.image_size": (24, 24), "dataset.image_size": (40, 40),
         "head.hidden_dims": (64,), "views.multicrop.local_size": (8, 8)}


def leaves(tree, prefix=""):
    """(dotted path, value) of every leaf; an empty dict is a leaf."""
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def lookup(tree, path):
    for key in path.split("."):
        tree = tree[key]
    return tree


def _kwargs_factory(path, c):
    """The callable whose keyword arguments the open dict at `path` holds."""
    if path == "encoder.kwargs":
        return encoders.ENCODERS.lookup(c["encoder"]["name"])
    if path == "views.kwargs":
        return views.POLICIES.lookup(c["views"]["policy"])
    if path.endswith("optimizer_kwargs"):
        return build._base_optimizer_init()
    if path == "captions":
        return adapters._caption_settings
    method = methods.METHODS.lookup(c["method"] if c["method"] != "ce" else "supcon")
    return method.__init__ if path == "method_kwargs" else method.default_loss


def _some_kwargs(path, c):
    """{argument: its default} for the factory's first argument with a plain default."""
    for name, p in inspect.signature(_kwargs_factory(path, c)).parameters.items():
        if (isinstance(p.default, (bool, int, float, str)) and name not in
                ("seed", "dtype", "name", *build.METHOD_RESERVED)):
            return {name: p.default}
    assert path == "method_kwargs", f"no keyword argument with a plain default for {path}"
    return {}  # A method whose constructor takes only what the command line sets.


# The only valid values with the cross-entropy baseline's other keys (one view, on
# the host, no multi-crop); metric learning's and InstDisc's one view allow only their own
# method, CPC's one view (each image cut into patches) the framework, and CLIP's (augmented
# on the device) too.
ONLY = {"ce": {"method": "ce", "views.augment_on": "host", "views.multicrop.local_views": 0},
        "metric": {"method": "metric"}, "instdisc": {"method": "instdisc"},
        "framework": {"method": "framework"},
        "clip": {"method": "clip", "views.augment_on": "device"}}


def new_value(path, default, c):
    """A valid value for `path` (its default `default`) in config `c`."""
    if path in ONLY.get(c["method"], {}):
        return ONLY[c["method"]][path]
    if path == "method_kwargs.extraction" and default == "cpc":
        return default  # CPC's one view: the other extractions compare two views.
    if path in NAMES:
        return next(v for v in NAMES[path] if v != default)
    if default is None:
        return SIZES[path]
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return 2 * default if default else 2
    if isinstance(default, float):
        return default / 2 if default else 0.5
    if isinstance(default, tuple):
        return tuple(v + 1 if isinstance(v, int) else v / 2 for v in default)
    if isinstance(default, dict):
        return _some_kwargs(path, c)
    raise AssertionError(f"{path}: no value rule for {default!r}")


def as_flag(path, value):
    text = repr(value) if isinstance(value, (tuple, dict)) else str(value)
    return f"--config.{path}={text}"


CONFIGS = [f"{name}.py" for name in config_files.bundled_configs()]


def test_every_config_is_walked():
    assert len(CONFIGS) >= 24


@pytest.mark.parametrize("name", CONFIGS)
def test_every_key_is_overridable_with_a_value_of_its_type(name):
    path = os.path.join(config_files.config_dir(), name)
    base = parse(path)
    resolved_base = schema.resolve(base)
    keys = dict(leaves(base.to_dict()))
    # The walk covers every key a config can hold, not only those the file sets.
    covered = set(keys) | {o for o in schema.OPEN_DICTS
                           if any(k.startswith(o + ".") for k in keys)}
    assert set(schema.flatten(schema.default_values())) <= covered
    for key, default in keys.items():
        value = new_value(key, default, resolved_base)
        resolved = schema.resolve(parse(path, as_flag(key, value)))
        got = lookup(resolved, key)
        if isinstance(value, tuple):
            got = tuple(got)
        assert got == value and type(got) is type(value), (key, value, got)
        if value != default:  # Only that key changed.
            assert lookup(resolved_base, key) != got


@pytest.mark.parametrize("override, message", [
    ("--config.dataset.to_rgb=maybe", "--config.dataset.to_rgb=maybe"),
    ("--config.pretrain.epochs=abc", "int()"),
])
def test_an_invalid_value_is_a_flag_error_naming_the_flag(override, message):
    path = os.path.join(config_files.config_dir(), "digits_supcon.py")
    with pytest.raises(flags.IllegalFlagValueError, match=re.escape(message)):
        parse(path, override)


@pytest.mark.parametrize("override, message", [
    ("--config.dataset.corrupt=ignore", "'dataset.corrupt' must be one of 'error', 'skip'"),
    ("--config.views.image_size=(32, 32, 3)", "e.g. --config.views.image_size='(224, 224)'"),
    ("--config.dataset.image_size=(0, 8)", "'dataset.image_size' must be None or two"),
])
def test_an_invalid_value_of_the_right_type_names_the_key(override, message):
    path = os.path.join(config_files.config_dir(), "digits_supcon.py")
    with pytest.raises(UsageError, match=re.escape(message)):
        schema.resolve(parse(path, override))


def test_a_missing_config_file_is_left_to_the_command_s_message(tmp_path):
    config = parse(str(tmp_path / "does_not_exist.py"))
    assert type(config).__name__ == "_ErrorConfig"  # session._check_config_file reports it.
