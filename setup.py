"""supcon-tf: supervised contrastive learning (SupCon) and SimCLR for Keras 3 / TensorFlow."""

from setuptools import find_packages, setup

setup(
    name="supcon-tf",
    version="0.1.0",
    description="Supervised contrastive learning and SimCLR for Keras 3 and TensorFlow.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["supcon_tf", "supcon_tf.*"]),
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
        "scikit-learn",  # the bundled `digits` data: the offline default dataset
        "matplotlib",
        "pillow",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "tf-keras~=2.21.0",  # only for hub.KerasLayer tests
            "jax[cpu]>=0.4.30",  # the core tests also run on Keras' JAX backend
            "tf2onnx>=1.17",  # the ONNX export test (as the onnx extra)
            "onnxruntime>=1.20",
        ],
        # --config.export.formats: "onnx" writes with tf2onnx; onnxruntime serves it.
        "onnx": ["tf2onnx>=1.17", "onnxruntime>=1.20"],
        "jax": ["jax>=0.4.30"],
        "bench": ["torch==2.13.0"],  # the PyTorch reference of tools/bench_step.py (CPU wheel)
    },
    entry_points={"console_scripts": ["supcon-tf=supcon_tf.main:run"]},
)
