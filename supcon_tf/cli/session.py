"""From parsed command-line values to a run: every check first, then the stages.

`prepare(Settings(...))` does everything that can fail on bad input (config file,
keys, types, names, work directory: whose it is, whether it can be written, whether
another run holds it) and raises `UsageError` before any training; it then takes the
work directory's lock, and `Session.execute()` runs the requested mode and lets it go.
"""

import dataclasses
import hashlib
import json
import os
import re

from supcon_tf import distribute
from supcon_tf.cli import checkpoint, config_files, say, schema
from supcon_tf.cli import workdir as wd
from supcon_tf.cli.errors import UsageError
from supcon_tf.cli.lock import WorkdirLock

# Keys every run record (config.json) has held since the first version.
_RECORD_KEYS = {"method", "dataset", "encoder", "pretrain", "linear"}

_CONFIG_ARG = re.compile(r"^--config=(.*)$")
_OVERRIDE_ARG = re.compile(r"^--config\.([\w.]+)(=.*)?$")


@dataclasses.dataclass
class Settings:
    """The command line's values (what main.py read from its flags)."""

    config: object  # the ConfigDict from --config (with overrides applied)
    config_path: str
    config_given: bool  # --config or an override was on the command line
    workdir: str = None
    mode: str = "all"
    strategy: str = "auto"
    tpu: str = None
    overwrite: bool = False
    worker_timeout: float = 600.0  # seconds a multi-worker run waits for its workers


def locate_config_argument(argv):
    """(argv with its `--config` path located, whether a config was given).

    The path is resolved by `config_files.find_config`; without `--config`, the
    default config is inserted. "Given" means `--config` or a `--config.KEY` override.
    """
    out = list(argv)
    given = False
    for i, arg in enumerate(out):
        match = _CONFIG_ARG.match(arg)
        if match:
            out[i] = "--config=" + config_files.find_config(match.group(1))
            given = True
        elif arg == "--config" and i + 1 < len(out):
            out[i + 1] = config_files.find_config(out[i + 1])
            given = True
        elif _OVERRIDE_ARG.match(arg):
            given = True
    if not any(a == "--config" or _CONFIG_ARG.match(a) for a in out):
        default = config_files.default_config_path()
        if default is not None:
            out.insert(1, f"--config={default}")
    return out, given


def describe_config_error(error, argv=()):
    """One paragraph for an error ml_collections raised while applying overrides."""
    text = str(error).replace("\\n", " ").replace("\\'", "'")
    missing = re.search(r"(\w+)'", text)
    suggested = re.search(r'Did you mean "(\w+)"', text)
    for key in (m.group(1) for m in map(_OVERRIDE_ARG.match, argv) if m):
        parent, _, leaf = key.rpartition(".")
        if missing and leaf == missing.group(1):
            if suggested:
                hint = f"{parent}.{suggested.group(1)}" if parent else suggested.group(1)
            elif parent in schema.OPEN_DICTS:
                hint = None
            else:
                hint = schema.closest_key(key, schema.flatten(schema.defaults().to_dict()))
            return (f"Unknown config key {key!r} in --config.{key}."
                    + (f" Did you mean {hint!r}?" if hint else "")
                    + " Every key, with its default, is in defaults() of "
                    "supcon_tf/cli/schema.py.")
    return f"Bad config override: {' '.join(text.split())}"


def describe_flag_error(error):
    """One paragraph for an absl flag error (a bad value, or a config file that raised)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1:  # A traceback from loading the config file: keep its last line.
        return f"{lines[0].split(':', 1)[0]}: {lines[-1]}"
    return lines[0] if lines else repr(error)


def _check_config_file(settings):
    path = settings.config_path
    if path is None or not os.path.isfile(path.split(":", 1)[0]):
        raise UsageError(config_files.describe_missing(path))
    if type(settings.config).__name__ == "_ErrorConfig":
        raise UsageError(f"Config file {path!r} could not be loaded: "
                         f"{getattr(settings.config, 'error', settings.config)}")


def _stored_resolved(workdir):
    """The workdir's recorded config with keys added since it was written at their
    defaults (so an older run still compares equal), or None."""
    try:
        stored = wd.stored_config(workdir)
    except ValueError as e:  # Not JSON: not a record this package wrote.
        raise UsageError(f"Work directory {workdir!r} holds a {wd.CONFIG_FILE} that is not "
                         f"a run's record ({e}); pass another --workdir.") from None
    if stored is None:
        return None
    try:
        return schema.resolve(stored)
    except UsageError as e:
        raise UsageError(f"Work directory {workdir!r} records a config this version cannot "
                         f"read: {e}") from e


def _holds_run(workdir):
    """Whether `workdir`'s config.json is a run record this package wrote."""
    try:
        stored = wd.stored_config(workdir)
        return (isinstance(stored, dict) and _RECORD_KEYS <= set(stored)
                and _stored_resolved(workdir) is not None)
    except (ValueError, UsageError):
        return False


def _resolved_config(settings, workdir):
    """The resolved config dict of this invocation."""
    stored = _stored_resolved(workdir)
    if stored is not None and not settings.config_given:
        return stored  # `supcon-tf --workdir=DIR` continues DIR's run.
    _check_config_file(settings)
    return schema.resolve(settings.config)


class Session:
    """A validated invocation, ready to run its mode."""

    def __init__(self, settings, config, workdir, run, lock):
        self.settings = settings
        self.config = config
        self.workdir = workdir
        self.run = run
        self.lock = lock

    def close(self):
        """Lets the work directory's lock go (done by `execute` when it ends)."""
        self.lock.release()

    def execute(self):
        try:
            return self._execute()
        finally:
            self.close()

    def _execute(self):
        mode, run = self.settings.mode, self.run
        result = {"workdir": self.workdir, "config": self.settings.config_path,
                  "method": self.config["method"], "dataset": self.config["dataset"]["name"]}
        export_dir = wd.path(self.workdir, "export")
        # Looked at before any training, so that every worker of a run decides alike.
        export_exists = os.path.exists(export_dir)
        if mode in ("all", "pretrain"):
            run.pretrain()
        if mode in ("all", "linear"):
            result["metrics"] = run.linear()
        if mode == "finetune" or (mode == "all" and self.config["finetune"]["enabled"]):
            result["finetune"] = run.finetune()
        if mode == "eval" or (mode == "all" and self.config["eval"]["plots"]):
            result["eval"] = run.evaluate()
        if mode == "export" or (mode == "all" and self.config["export"]["enabled"]):
            if mode == "all" and export_exists and not self.settings.overwrite:
                run.log(f"[export] {export_dir} already exists; kept.")
                result["export"] = export_dir
            else:
                result["export"] = run.export(overwrite=self.settings.overwrite)
        if mode == "index":
            from supcon_tf.cli.index import build_index

            result["index"] = build_index(run)
        return result


def prepare(settings, log=say):
    """Checks everything and builds the run; raises `UsageError` on bad input."""
    import keras

    from supcon_tf import distribute
    from supcon_tf.cli import build

    mode = settings.mode
    new_run = mode in ("all", "pretrain")
    if not new_run and not settings.workdir:
        raise UsageError(f"--mode={mode} works on an existing run: pass --workdir=DIR of a "
                         "run started with --mode=all or pretrain.")
    workdir = wd.check_directory(os.path.expanduser(settings.workdir or wd.default_workdir()))
    settings.workdir = workdir  # The default filled in: a failure's message names it.
    wd.check_claim(workdir, settings.overwrite and new_run, _holds_run(workdir))
    config = _resolved_config(settings, workdir)
    stored = _stored_resolved(workdir)
    if not new_run:
        if stored is None:
            raise UsageError(f"Work directory {workdir!r} holds no run (no "
                             f"{wd.CONFIG_FILE}); start one with --mode=all or pretrain.")
        # The stage-2 sections (fine-tuning, transfer) may differ from the recorded run.
        from supcon_tf.cli.finetune import pretrained_part

        wd.check_same_config(workdir, pretrained_part(stored), pretrained_part(config),
                             hint=" Run this mode without --config to use the recorded one.")
    elif not settings.overwrite:
        wd.check_same_config(workdir, stored, config)
    if config["transfer"]["dataset"] and mode not in ("linear", "finetune"):
        raise UsageError(
            f"Config key 'transfer.dataset' ({config['transfer']['dataset']!r}) applies to "
            f"--mode=linear and --mode=finetune on a pretrained run; received --mode={mode}.")
    strategy = build.get_strategy(settings.strategy, settings.tpu, settings.worker_timeout)
    _check_workers_agree(strategy, settings, config)
    is_chief = distribute.is_chief(strategy)
    if is_chief:
        wd.check_writable(workdir)
    log = _worker_log(workdir, strategy, log)
    if isinstance(strategy, keras.distribution.DataParallel):  # on JAX
        devices = strategy.device_mesh.devices
        log(f"[strategy] {type(strategy).__name__} over {devices.size} devices: "
            f"{', '.join(str(d) for d in devices.flat)}")
    _set_globals(config)
    from supcon_tf.cli.stages import Run

    run = Run(config, workdir, strategy, log=log)
    if mode == "finetune" or (mode == "all" and config["finetune"]["enabled"]):
        run.finetuning()  # Its checks (labels, blocks, batch size), before any training.
    lock = WorkdirLock(workdir, is_chief=is_chief).acquire()
    try:
        if new_run and is_chief:
            wd.prepare(workdir, config, overwrite=settings.overwrite)
    except BaseException:
        lock.release()
        raise
    return Session(settings, config, workdir, run, lock)


def newest_checkpoint(workdir):
    """The newest complete checkpoint in `workdir` (a path), or None."""
    return checkpoint.newest(wd.path(workdir, "checkpoints"))


def _check_workers_agree(strategy, settings, config):
    """Raises `UsageError` on every worker of a multi-worker run when they were started
    with different resolved configs or modes (they would train different models, or
    wait on each other forever)."""
    what = json.dumps([settings.mode, settings.overwrite, config], sort_keys=True)
    digest = int(hashlib.sha256(what.encode()).hexdigest()[:12], 16)  # 48 bits
    digests = distribute.worker_values(strategy, digest)
    if len(set(digests)) > 1:
        shown = ", ".join(f"replica {i}: {d:012x}" for i, d in enumerate(digests))
        raise UsageError(
            "The workers of this run were started with different configs or modes "
            f"(digests of the resolved config, --mode and --overwrite: {shown}; this "
            f"worker's is {digest:012x}). Start every worker with the same --config, "
            "--config.KEY overrides and --mode.")


def _worker_log(workdir, strategy, log):
    """`log`, which in a multi-worker run also appends to this worker's own file,
    logs/<task type>-<index>.log in the work directory (process-<index>.log on JAX)."""
    import tensorflow as tf

    if not distribute.is_multi_worker(strategy):
        return log
    task = distribute.tf_config_task()
    if task is None:  # A multi-host JAX run
        import jax

        task = (None, "process", jax.process_index())
    _, task_type, index = task
    folder = wd.path(workdir, "logs")
    file_path = wd.path(workdir, "logs", f"{task_type}-{index}.log")

    def both(line):
        log(line)
        tf.io.gfile.makedirs(folder)
        with tf.io.gfile.GFile(file_path, "a") as f:
            f.write(f"{line}\n")

    return both


def _set_globals(config):
    """Precision policy, seeds and (optionally) deterministic ops, before any model."""
    import keras
    import tensorflow as tf

    from supcon_tf import precision

    precision.set_policy(config["precision"])
    keras.utils.set_random_seed(config["seed"])
    if config["deterministic"]:
        tf.config.experimental.enable_op_determinism()


def _datasets(metrics):
    """'X, pretrained on Y, ' for a stage on a transfer dataset; '' otherwise."""
    if "pretrain_dataset" not in metrics or metrics["pretrain_dataset"] == metrics["dataset"]:
        return ""
    return f"{metrics['dataset']}, pretrained on {metrics['pretrain_dataset']}, "


def print_result(result, seconds):
    """The run's summary lines: accuracy, where the model and the logs are."""
    lines = [f"supcon-tf: {result['method']} on {result['dataset']} finished in "
             f"{seconds:.0f}s; work directory {os.path.abspath(result['workdir'])}"]
    metrics = result.get("metrics")
    if metrics:
        lines.append(f"  linear evaluation ({_datasets(metrics)}{metrics['test_split']} "
                     f"split): top-1 {metrics['linear_top1']:.4f}, top-5 "
                     f"{metrics['linear_top5']:.4f}")
    tuned = result.get("finetune")
    if tuned:
        lines.append(f"  fine-tuning on {tuned['labels']} labels ({_datasets(tuned)}"
                     f"{tuned['test_split']} split): top-1 {tuned['finetune_top1']:.4f}, "
                     f"top-5 {tuned['finetune_top5']:.4f}; {os.path.abspath(tuned['folder'])}")
    if result.get("export"):
        lines.append(f"  exported model: {os.path.abspath(result['export'])}")
    if result.get("index"):
        lines.append(f"  embedding index: {os.path.abspath(result['index'])}")
    for key, value in (result.get("eval") or {}).items():
        if isinstance(value, str):
            lines.append(f"  {key}: {os.path.abspath(value)}")
    print("\n".join(lines), flush=True)
