r"""SupCon on CIFAR-10 with a ResNet-50 (CIFAR stem): the paper's CIFAR-10 setting.

  supcon-tf --config=configs/cifar10_supcon.py --workdir=gs://BUCKET/cifar10_supcon \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/cifar10_supcon.py:local --workdir=/tmp/smoke   # tiny model

Follows Khosla et al., "Supervised Contrastive Learning" (NeurIPS 2020) on CIFAR-10
as released with the authors' reference code: ResNet-50 with a 3x3 stem, two views,
batch 1024, SupCon L^sup_out at temperature 0.1, SGD with momentum 0.9, learning
rate 0.5 with 10 warmup epochs and cosine decay, weight decay 1e-4, 1000 epochs;
augmentation: random resized crop (area 0.2-1), flip, colour jitter (0.4, 0.4, 0.4,
0.1; p 0.8), grayscale (p 0.2). Stage 2: a linear classifier on the frozen
representation, SGD learning rate 5, batch 512, 100 epochs. Reported: 96.0% top-1.
Needs the TFDS `cifar10` data (`tfds build cifar10` or --config.dataset.data_dir).
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "supcon"
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
    c.head = dict(hidden_dims=None, output_dim=128, use_batch_norm=True, sync_batch_norm=True)
    c.loss = dict(temperature=0.1)
    c.views = dict(policy="cifar", num_views=2, augment_on="host", image_size=None,
                   kwargs=dict(strength=0.5, area_range=(0.2, 1.0)))

    c.pretrain = dict(epochs=1000, batch_size=1024, optimizer="sgd",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.5,
                      lr_scaling="none", warmup_epochs=10.0, weight_decay=1e-4,
                      schedule="cosine")
    c.linear = dict(epochs=100, batch_size=512, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9), learning_rate=5.0,
                    lr_scaling="none", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="cifar")
    c.eval = dict(knn_every_epochs=10, knn_k=200, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.encoder.name = "resnet18"
        c.encoder.kwargs.width_multiplier = 0.125
        c.encoder.kwargs.sync_batch_norm = False
        c.head.sync_batch_norm = False
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 64
        c.linear.epochs = 1
        c.linear.batch_size = 64
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
