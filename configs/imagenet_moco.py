r"""MoCo v2 on ImageNet with a ResNet-50: the "Improved Baselines" setting.

  supcon-tf --config=configs/imagenet_moco.py --workdir=gs://BUCKET/imagenet_moco \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/imagenet_moco.py:local --workdir=/tmp/smoke   # tiny model

Follows Chen, Fan, Girshick and He, "Improved Baselines with Momentum Contrastive
Learning" (2020) and the official facebookresearch/moco `main_moco.py` with
`--mlp --moco-t 0.2 --aug-plus --cos`: ResNet-50, batch 256, SGD momentum 0.9 with
learning rate 0.03 (x batch/256), weight decay 1e-4, cosine over 200 epochs (800 for
the paper's best), a queue of 65,536 keys, key-encoder momentum 0.999, InfoNCE at
temperature 0.2, a 2048-2048-128 MLP head, the SimCLR-style augmentation with blur
("aug+"), shuffled BatchNorm for the key encoder (no synchronized BN, as the paper).
Stage 2: linear classification with SGD at learning rate 30, no weight decay, 100
epochs. Reported: 67.5% top-1 (200 epochs), 71.1% (800). Needs the TFDS
`imagenet2012` data, prepared by hand.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "moco"
    c.method_kwargs = dict(queue_size=65536, momentum=0.999)
    c.seed = 0
    c.precision = "mixed_bfloat16"
    c.deterministic = False
    c.steps_per_execution = 100
    c.checkpoint_every_steps = 2000
    c.keep_checkpoints = 2

    c.dataset = dict(name="imagenet2012", data_dir=None, train_split="train",
                     test_split="validation", shuffle_buffer=50_000)
    c.encoder = dict(name="resnet50", kwargs=dict(stem="imagenet", width_multiplier=1.0,
                                                  sync_batch_norm=False))
    c.head = dict(hidden_dims=(2048,), output_dim=128, use_batch_norm=False,
                  sync_batch_norm=False)
    c.loss = dict(temperature=0.2)
    c.views = dict(policy="simclr", num_views=2, augment_on="host", image_size=(224, 224),
                   kwargs=dict(strength=1.0))

    c.pretrain = dict(epochs=200, batch_size=256, optimizer="sgd",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.03,
                      lr_scaling="linear", warmup_epochs=0.0, weight_decay=1e-4,
                      schedule="cosine")
    c.linear = dict(epochs=100, batch_size=256, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9), learning_rate=30.0,
                    lr_scaling="none", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="simclr")
    c.eval = dict(knn_every_epochs=50, knn_k=200, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.precision = "float32"
        c.steps_per_execution = 1
        c.encoder.kwargs.width_multiplier = 0.125
        c.encoder.kwargs.sync_batch_norm = False
        c.head.hidden_dims = (64,)
        c.head.sync_batch_norm = False
        c.views.image_size = (64, 64)
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 32
        c.method_kwargs.queue_size = 256
        c.linear.epochs = 1
        c.linear.batch_size = 32
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
