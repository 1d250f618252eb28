r"""SimSiam on CIFAR-10 with a ResNet-18 (CIFAR stem): the paper's CIFAR-10 setting.

  supcon-tf --config=configs/cifar10_simsiam.py --workdir=gs://BUCKET/cifar10_simsiam \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/cifar10_simsiam.py:local --workdir=/tmp/smoke

Follows Chen & He, "Exploring Simple Siamese Representation Learning" (CVPR 2021),
appendix D (CIFAR): ResNet-18 with a 3x3 stem, batch 512, SGD with momentum 0.9 and
learning rate 0.03 x batch/256, weight decay 5e-4, cosine decay, 800 epochs; the
projector's 3 layers of 2048 with BatchNorm on each (output included), a bottleneck
predictor 2048-512-2048; SimCLR's CIFAR augmentation. Reported ~91.8% linear top-1.
Needs the TFDS `cifar10` data.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "simsiam"
    c.method_kwargs = dict(predictor_dim=512)
    c.seed = 0
    c.precision = "float32"
    c.deterministic = False
    c.steps_per_execution = 1
    c.checkpoint_every_steps = 1000
    c.keep_checkpoints = 2

    c.dataset = dict(name="cifar10", data_dir=None, train_split="train", test_split="test",
                     shuffle_buffer=50_000)
    c.encoder = dict(name="resnet18", kwargs=dict(stem="cifar", width_multiplier=1.0,
                                                  sync_batch_norm=True))
    c.head = dict(hidden_dims=(2048, 2048), output_dim=2048, use_batch_norm=True,
                  sync_batch_norm=True, output_batch_norm=True, normalize=False)
    c.loss = {}
    c.views = dict(policy="cifar", num_views=2, augment_on="host", image_size=None,
                   kwargs=dict(strength=0.5))

    c.pretrain = dict(epochs=800, batch_size=512, optimizer="sgd",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.03,
                      lr_scaling="linear", warmup_epochs=0.0, weight_decay=5e-4,
                      schedule="cosine")
    c.linear = dict(epochs=100, batch_size=512, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9, nesterov=True), learning_rate=0.1,
                    lr_scaling="linear", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="cifar")
    c.eval = dict(knn_every_epochs=10, knn_k=200, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.encoder.kwargs.width_multiplier = 0.125
        c.encoder.kwargs.sync_batch_norm = False
        c.head.hidden_dims = (64, 64)
        c.head.output_dim = 64
        c.head.sync_batch_norm = False
        c.method_kwargs.predictor_dim = 16
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 64
        c.linear.epochs = 1
        c.linear.batch_size = 64
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
