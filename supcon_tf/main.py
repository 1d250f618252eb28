"""The `supcon-tf` command: config file -> objects in strategy scope -> fit -> export.

  supcon-tf                                   # digits_supcon into ./runs/<time>
  supcon-tf --config=cifar10_supcon --workdir=DIR [--config.pretrain.epochs=10]
            [--mode=all|pretrain|linear|finetune|eval|export|index] [--strategy=auto|cpu|gpu|
            mirrored|multi_worker|tpu --tpu=ADDRESS|data_parallel (JAX)]
            [--worker_timeout=SECONDS] [--overwrite]
  supcon-tf --list-configs                    # the bundled configs, one line each

`--config` takes a bundled config's name (`NAME` or `NAME:local`) or a file path.

Flags are read here and nowhere else; `supcon_tf.cli` takes explicit arguments.
Rerunning a command on the same --workdir resumes it from its last checkpoint.
Bad input (config keys, types, names, files, a workdir of another config or of
other files, one that cannot be written or that another run holds) exits with
status 2 and a message before any training; a NaN or infinite loss stops training
at that step with status 3, a failed write (a full disk) with status 4, Ctrl-C
with status 130: each with one paragraph naming the newest intact checkpoint and
the command that resumes from it.
"""

import errno
import os
import shlex
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TensorFlow loads: no C++ chatter.

from absl import app, flags, logging
from ml_collections import config_flags

from supcon_tf.cli import config_files, errors, session
from supcon_tf.cli.config_flag import define_config_flag
from supcon_tf.cli.errors import UsageError, WriteFailedError
from supcon_tf.cli.lock import describe as describe_holder

MODES = ("all", "pretrain", "linear", "finetune", "eval", "export", "index")
_CONFIG_GIVEN = False  # set by parse_flags: --config or an override was on the command line

_CONFIG = define_config_flag(
    "config",
    "Experiment config: a bundled config's name (see --list-configs) or a Python file with "
    "get_config(), optionally `NAME:arg` / `file.py:arg`; override any key with "
    f"--config.KEY=VALUE. Default: {config_files.DEFAULT_CONFIG}.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Work directory of the run (default: ./runs/<UTC timestamp>). "
    "Rerunning on the same one resumes it.")
_MODE = flags.DEFINE_enum("mode", "all", MODES, "What to run: all = pretrain, linear, "
                          "finetune (with finetune.enabled), eval and export; index = an "
                          "embedding index of the train split with the run's export (search "
                          "it with supcon-tf-search).")
_STRATEGY = flags.DEFINE_string("strategy", "auto", "Distribution strategy: auto, cpu, gpu, "
                                "mirrored, multi_worker or tpu; on KERAS_BACKEND=jax auto or "
                                "data_parallel (every device), cpu or gpu.")
_TPU = flags.DEFINE_string("tpu", None, "TPU address for --strategy=tpu.")
_WORKER_TIMEOUT = flags.DEFINE_float(
    "worker_timeout", 600.0, "Seconds a multi-worker run waits for every worker of "
    "TF_CONFIG before it exits with status 2, naming the addresses it could not reach.",
    lower_bound=1.0)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Delete a run of another config in "
                               "--workdir (pretrain/all), or replace an existing export.")
_LIST_CONFIGS = flags.DEFINE_bool("list_configs", False, "Print every bundled config with "
                                  "its one-line description and exit (also --list-configs).")


def fail(message, status=errors.EXIT_USAGE):
    """Prints a one-paragraph error and exits with `status` (default 2: bad input)."""
    print(f"supcon-tf: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def resume_command(workdir):
    """This command as it resumes the run in `workdir`: without --overwrite (which
    would start again), with --workdir (else a new ./runs/<time> would be started)."""
    args = [a for a in sys.argv[1:] if a != "--overwrite"]
    if not any(a == "--workdir" or a.startswith("--workdir=") for a in args):
        args.append(f"--workdir={workdir}")
    return " ".join(["supcon-tf"] + [shlex.quote(a) for a in args])


def _resume_note(workdir):
    newest = session.newest_checkpoint(workdir)
    where = (f"the newest intact checkpoint is {newest}" if newest else
             "no checkpoint was written yet")
    return f"{where}; the same command resumes from it: {resume_command(workdir)}"


def _interrupted(prepared, workdir):
    """The one line printed on Ctrl-C."""
    training = prepared.run.training if prepared else None
    reached = (f"at step {training.step}/{training.total_steps} of {training.name}"
               if training else "before training")
    return f"supcon-tf: interrupted {reached}; {_resume_note(workdir)}"


def parse_flags(argv):
    """absl flag parsing that reports bad flags and config overrides with exit status 2.

    Without --config the default config file is inserted (and recorded as not given,
    so that `--workdir=DIR` alone continues DIR's recorded run).
    """
    global _CONFIG_GIVEN
    argv = ["--list_configs" if a == "--list-configs" else a for a in argv]
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
    if _LIST_CONFIGS.value:
        print(config_files.listing())
        return
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress.
        # Keras' note on subclassed models built by a first call (ours are, on purpose).
        warnings.filterwarnings("ignore", message=r"`build\(\)` was called on layer")
    start = time.time()
    prepared, settings = None, None
    try:
        # Absent only without --config and without a default config installed.
        present = flags.FLAGS["config"].present
        settings = session.Settings(
            config=_CONFIG.value if present else None,
            config_path=config_flags.get_config_filename(flags.FLAGS["config"]) if present
            else None,
            config_given=_CONFIG_GIVEN,
            workdir=_WORKDIR.value, mode=_MODE.value, strategy=_STRATEGY.value,
            tpu=_TPU.value, overwrite=_OVERWRITE.value,
            worker_timeout=_WORKER_TIMEOUT.value)
        prepared = session.prepare(settings)
        result = prepared.execute()
    except UsageError as e:  # Raised before any training of the stage that found it.
        fail(str(e))
    except FloatingPointError as e:  # methods.NonFiniteLossError: a NaN / inf loss.
        fail(f"{e} Work directory: {settings.workdir or 'see above'}.",
             errors.EXIT_NON_FINITE)
    except OSError as e:  # WriteFailedError, or a full disk found by other code.
        if not isinstance(e, WriteFailedError):
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            e = WriteFailedError(e.filename, e.strerror)
        fail(f"{e} Nothing else was lost: {_resume_note(settings.workdir)} (once there is "
             "space, or the file system is back).", errors.EXIT_WRITE_FAILED)
    except KeyboardInterrupt:
        if prepared is not None and prepared.lock.lost is not None:
            fail(f"Stopped: another run took over work directory {prepared.workdir!r} "
                 f"({describe_holder(prepared.lock.lost, prepared.workdir)}).")
        if settings is None or settings.workdir is None:
            raise  # Before the work directory was chosen: nothing to resume.
        print(_interrupted(prepared, settings.workdir), file=sys.stderr, flush=True)
        sys.exit(errors.EXIT_INTERRUPTED)
    finally:
        if prepared is not None:
            prepared.close()
    session.print_result(result, time.time() - start)


def run():
    """Console-script entry point (`supcon-tf`)."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
