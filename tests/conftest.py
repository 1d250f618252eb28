"""Shared test set-up: the tests folder on sys.path for the reference helpers; report the backend."""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA compiles every function the tests jit (all of JAX's, TensorFlow's jit_compile paths)
# for a few steps on tiny tensors: LLVM's optimization passes cost more than they save
# there (the JAX method-contract fits took 46% less CPU without them). Numbers stay within
# the tests' rounding bounds; subprocesses inherit the flag. An explicit level wins.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(
        [*os.environ.get("XLA_FLAGS", "").split(), "--xla_backend_optimization_level=0"])


def pytest_report_header(config):
    import keras

    return f"keras {keras.__version__}, backend {keras.backend.backend()}"
