"""supcon-tf: supervised contrastive learning (SupCon) and SimCLR for Keras 3 / TensorFlow."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).resolve().parent


def version():
    """`supcon_tf.__version__`, read without importing the package: its one source."""
    text = (HERE / "supcon_tf" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, flags=re.M).group(1)


setup(
    name="supcon-tf",
    version=version(),
    description="Supervised contrastive learning and SimCLR for Keras 3 and TensorFlow.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # The top-level configs/ folder is the package supcon_tf.configs: one copy, shipped.
    packages=find_packages(include=["supcon_tf", "supcon_tf.*"]) + ["supcon_tf.configs"],
    package_dir={"supcon_tf.configs": "configs"},
    include_package_data=True,  # The package's data files (MANIFEST.in), in the wheel too.
    install_requires=[
        "tensorflow~=2.21.0",
        "keras>=3.10",
        "tensorflow-hub>=0.16",
        "setuptools<81",  # tensorflow-hub 0.16 imports pkg_resources, gone in setuptools 81
        "tensorflow-datasets>=4.9",
        "tensorboard~=2.21.0",  # the CLI's TensorBoard logs (tf.summary)
        "absl-py>=2.0",
        "ml-collections>=1.0",
        "numpy",
        # ml_dtypes 0.7.0 spends 1.55 s of CPU in its import (0.22 s for 0.5.4 and 0.6.0,
        # measured on 2026-12-06); TensorFlow imports it, so every process paid it.
        "ml-dtypes>=0.5.4,<0.7",
        "scikit-learn",  # the bundled `digits` data: the offline default dataset
        "matplotlib",
        "pillow",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",  # the README's test command runs 2 workers (-n 2)
            "tf-keras~=2.21.0",  # only for hub.KerasLayer tests
            "jax[cpu]>=0.4.30",  # the core tests also run on Keras' JAX backend
            "build>=1.0",  # tests/test_packaging.py: `python -m build --no-isolation`
            "wheel",  # ... whose wheel needs it with setuptools < 70.1 (Python 3.11's venvs)
            "tf2onnx>=1.17",  # the ONNX export test (as the onnx extra)
            "onnxruntime>=1.20",
        ],
        # --config.export.formats: "onnx" writes with tf2onnx; onnxruntime serves it.
        "onnx": ["tf2onnx>=1.17", "onnxruntime>=1.20"],
        "jax": ["jax>=0.4.30"],
        # EmbeddingIndex.search(method="faiss"): approximate k-NN (HNSW).
        "ann": ["faiss-cpu>=1.8"],
        "bench": ["torch==2.13.0"],  # the PyTorch reference of tools/bench_step.py (CPU wheel)
    },
    entry_points={"console_scripts": ["supcon-tf=supcon_tf.main:run",
                                       "supcon-tf-search=supcon_tf.cli.index:main"]},
)
