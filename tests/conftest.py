"""Shared test set-up: the tests folder on sys.path for the reference helpers; report the backend."""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA compiles every function the tests jit (all of JAX's, TensorFlow's jit_compile paths)
# and, on JAX, every eager operation once per shape, for a few steps on tiny tensors: there
# compiling costs more than the code it makes saves. So no LLVM optimization passes (the
# JAX method-contract fits took 46% less CPU) and XLA:CPU's older elemental emitters for
# fusions, not its MLIR fusion emitters (JAX's metric-loss tests: 47 -> 35 s of CPU, the
# process start-up included). Numbers stay within the tests' rounding bounds; subprocesses
# inherit the flags. A flag set explicitly wins.
for _flag, _value in (("xla_backend_optimization_level", "0"),
                      ("xla_cpu_use_fusion_emitters", "false")):
    if _flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = " ".join(
            [*os.environ.get("XLA_FLAGS", "").split(), f"--{_flag}={_value}"])


def pytest_report_header(config):
    import keras

    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


# The slowest modules, slowest first (wall seconds of an idle 2-core run, 2026-12-06):
# started first on the two xdist workers, so that the many short modules fill the end and
# neither worker is left running a long module alone. (xdist's own order, by the number
# of tests per module, started the four long JAX reruns last.)
SLOWEST_FIRST = (
    "test_backends.py",  # ~300 s: the JAX reruns (two processes)
    "test_distribute_replicas.py",  # ~250 s: 1, 2 and 4 replica processes
    "test_bench_tools.py",
    "test_method_contract.py",
    "test_cli_multi_worker.py",
    "test_readme.py",
    "test_cli.py",
    "test_preemption_trials.py",
    "test_export_runtimes.py",
    "test_metric_cli.py",
    "test_finetune.py",
    "test_multicrop.py",
)


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: keep the order below.
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
