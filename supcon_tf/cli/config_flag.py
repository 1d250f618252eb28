"""The `--config` flag: a config file whose every key can be set with --config.KEY=VALUE.

ml_collections' config-file flag, with the loaded config completed by
`schema.typed` before it is locked: keys the file leaves out are there at their
defaults, and keys at None are typed placeholders, so an override such as
`--config.dataset.data_dir=/data/tfds` or `--config.views.image_size='(32, 32)'`
parses as a value of that key's type on every config.
"""

import ml_collections
from absl import flags
from ml_collections import config_flags

from supcon_tf.cli import schema


class _TypedConfigParser(flags.ArgumentParser):
    """Loads the config file with ml_collections' parser, completes it, then locks it."""

    def __init__(self, inner):
        self._inner = inner

    def parse(self, argument):
        config = self._inner.parse(argument)
        if isinstance(config, ml_collections.ConfigDict):  # Not a file that failed to
            schema.typed(config).lock()                   # load: its error comes later.
        return config

    def flag_type(self):
        return self._inner.flag_type()


def define_config_flag(name, help_string, flag_values=flags.FLAGS, sys_argv=None):
    """Defines `--name` (a config file, `file.py:arg`) in `flag_values`; its holder."""
    holder = config_flags.DEFINE_config_file(name, None, help_string, flag_values=flag_values,
                                             lock_config=False, sys_argv=sys_argv)
    flag = flag_values[name]
    flag.parser = _TypedConfigParser(flag.parser)
    return holder


def parse_config(config_file, *overrides):
    """The config `supcon-tf --config=CONFIG_FILE OVERRIDES...` parses (`overrides` as
    `--config.KEY=VALUE` strings), in a flag set of its own: for tests and notebooks."""
    argv = ["supcon-tf", f"--config={config_file}", *overrides]
    flag_values = flags.FlagValues()
    holder = define_config_flag("config", "config file", flag_values=flag_values,
                                sys_argv=argv)
    flag_values(argv)
    return holder.value
