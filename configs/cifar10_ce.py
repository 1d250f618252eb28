r"""Cross-entropy baseline on CIFAR-10 with a ResNet-50 (CIFAR stem), as in SupCon's tables.

  supcon-tf --config=configs/cifar10_ce.py --workdir=gs://BUCKET/cifar10_ce \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/cifar10_ce.py:local --workdir=/tmp/smoke   # tiny model

The baseline Khosla et al. (NeurIPS 2020) compare SupCon with on CIFAR-10, following
the authors' reference code: the same ResNet-50 and a linear head trained end to end
with softmax cross-entropy, batch 1024, SGD with momentum 0.9, learning rate 0.8 with
cosine decay, weight decay 1e-4, 500 epochs; random resized crop (area 0.2-1) and
flip, no colour distortion. There is no stage 2: the linear stage evaluates this
classifier. Reported: 95.0% top-1. Needs the TFDS `cifar10` data.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "ce"
    c.seed = 0
    c.precision = "float32"
    c.deterministic = False
    c.steps_per_execution = 1
    c.checkpoint_every_steps = 1000
    c.keep_checkpoints = 2

    c.dataset = dict(name="cifar10", data_dir=None, train_split="train", test_split="test",
                     shuffle_buffer=50_000)
    c.encoder = dict(name="resnet50", kwargs=dict(stem="cifar", width_multiplier=1.0,
                                                  sync_batch_norm=True))
    c.views = dict(policy="cifar", num_views=1, augment_on="host", image_size=None,
                   kwargs=dict(area_range=(0.2, 1.0), jitter_p=0.0, grayscale_p=0.0))

    c.pretrain = dict(epochs=500, batch_size=1024, optimizer="sgd",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.8,
                      lr_scaling="none", warmup_epochs=0.0, weight_decay=1e-4,
                      schedule="cosine")
    c.eval = dict(knn_every_epochs=0, knn_k=200, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.encoder.name = "resnet18"
        c.encoder.kwargs.width_multiplier = 0.125
        c.encoder.kwargs.sync_batch_norm = False
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 64
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
