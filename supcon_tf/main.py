"""The `supcon-tf` command: config file -> objects in strategy scope -> fit -> export.

  supcon-tf                                   # configs/digits_supcon.py into ./runs/<time>
  supcon-tf --config=configs/cifar10_supcon.py --workdir=DIR [--config.pretrain.epochs=10]
            [--mode=all|pretrain|linear|eval|export] [--strategy=auto|cpu|gpu|mirrored|
            multi_worker|tpu --tpu=ADDRESS] [--worker_timeout=SECONDS] [--overwrite]

Flags are read here and nowhere else; `supcon_tf.cli` takes explicit arguments.
Rerunning a command on the same --workdir resumes it from its last checkpoint.
Bad input (config keys, types, names, files, a workdir of another config) exits
with status 2 and a message before any training; a NaN or infinite loss stops
training at that step with status 3, its last checkpoint intact.
"""

import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TensorFlow loads: no C++ chatter.

from absl import app, flags, logging
from ml_collections import config_flags

from supcon_tf.cli import session
from supcon_tf.cli.errors import UsageError

MODES = ("all", "pretrain", "linear", "eval", "export")
_CONFIG_GIVEN = False  # set by parse_flags: --config or an override was on the command line

_CONFIG = config_flags.DEFINE_config_file(
    "config", None,
    "Experiment config file (a Python file with get_config()), optionally `file.py:arg`; "
    "override keys with --config.KEY=VALUE. Default: configs/digits_supcon.py.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Work directory of the run (default: ./runs/<UTC timestamp>). "
    "Rerunning on the same one resumes it.")
_MODE = flags.DEFINE_enum("mode", "all", MODES, "What to run: all = pretrain, linear, "
                          "eval and export.")
_STRATEGY = flags.DEFINE_string("strategy", "auto", "Distribution strategy: auto, cpu, gpu, "
                                "mirrored, multi_worker or tpu.")
_TPU = flags.DEFINE_string("tpu", None, "TPU address for --strategy=tpu.")
_WORKER_TIMEOUT = flags.DEFINE_float(
    "worker_timeout", 600.0, "Seconds a multi-worker run waits for every worker of "
    "TF_CONFIG before it exits with status 2, naming the addresses it could not reach.",
    lower_bound=1.0)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Delete a run of another config in "
                               "--workdir (pretrain/all), or replace an existing export.")


def fail(message):
    """Prints a one-paragraph error and exits with status 2 (bad input)."""
    print(f"supcon-tf: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def parse_flags(argv):
    """absl flag parsing that reports bad flags and config overrides with exit status 2.

    Without --config the default config file is inserted (and recorded as not given,
    so that `--workdir=DIR` alone continues DIR's recorded run).
    """
    global _CONFIG_GIVEN
    argv, _CONFIG_GIVEN = session.locate_config_argument(argv)
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(f"{session.describe_flag_error(e)} (see --helpfull for every flag)")
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        fail(session.describe_config_error(e, argv))


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {' '.join(argv[1:])!r}; every option is a --flag "
             "(see --helpfull).")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress.
        # Keras' note on subclassed models built by a first call (ours are, on purpose).
        warnings.filterwarnings("ignore", message=r"`build\(\)` was called on layer")
    start = time.time()
    try:
        config_path = config_flags.get_config_filename(flags.FLAGS["config"])
        settings = session.Settings(
            config=_CONFIG.value, config_path=config_path,
            config_given=_CONFIG_GIVEN,
            workdir=_WORKDIR.value, mode=_MODE.value, strategy=_STRATEGY.value,
            tpu=_TPU.value, overwrite=_OVERWRITE.value,
            worker_timeout=_WORKER_TIMEOUT.value)
        result = session.prepare(settings).execute()
    except UsageError as e:  # Raised before any training of the stage that found it.
        fail(str(e))
    except FloatingPointError as e:  # methods.NonFiniteLossError: a NaN / inf loss.
        print(f"supcon-tf: error: {e} Work directory: {settings.workdir or 'see above'}.",
              file=sys.stderr, flush=True)
        sys.exit(3)
    session.print_result(result, time.time() - start)


def run():
    """Console-script entry point (`supcon-tf`)."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
