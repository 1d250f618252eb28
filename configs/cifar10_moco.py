r"""MoCo v2 on CIFAR-10 with a ResNet-18 (CIFAR stem): the MoCo authors' CIFAR-10 demo.

  supcon-tf --config=configs/cifar10_moco.py --workdir=gs://BUCKET/cifar10_moco \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/cifar10_moco.py:local --workdir=/tmp/smoke   # tiny model

MoCo v2 (Chen et al. 2020, "Improved Baselines with Momentum Contrastive Learning")
with the settings of the official CIFAR-10 demo (facebookresearch/moco,
colab/moco_cifar10_demo.ipynb): ResNet-18 with a 3x3 stem, batch 512, SGD momentum
0.9, learning rate 0.06 (not scaled by the batch), weight decay 5e-4, cosine over 200 epochs, a queue of 4,096 keys, momentum 0.99, temperature 0.1,
the symmetric loss; 2-layer MLP head 512-128. Stage 2: a linear classifier on the
frozen representation. Needs the TFDS `cifar10` data.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "moco"
    c.method_kwargs = dict(queue_size=4096, momentum=0.99, symmetric=True)
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
    c.head = dict(hidden_dims=None, output_dim=128, use_batch_norm=True, sync_batch_norm=True)
    c.loss = dict(temperature=0.1)
    c.views = dict(policy="cifar", num_views=2, augment_on="host", image_size=None,
                   kwargs=dict(strength=0.5))

    c.pretrain = dict(epochs=200, batch_size=512, optimizer="sgd",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.06,
                      lr_scaling="none", warmup_epochs=0.0, weight_decay=5e-4,
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
        c.head.sync_batch_norm = False
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 64
        c.method_kwargs.queue_size = 256
        c.linear.epochs = 1
        c.linear.batch_size = 64
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
