r"""NNCLR on ImageNet with a ResNet-50: the paper's main setting.

  supcon-tf --config=configs/imagenet_nnclr.py --workdir=gs://BUCKET/imagenet_nnclr \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/imagenet_nnclr.py:local --workdir=/tmp/smoke   # tiny model

Follows Dwibedi et al., "With a Little Help from My Friends: Nearest-Neighbor
Contrastive Learning of Visual Representations" (ICCV 2021), Sec. 4: ResNet-50,
batch 4096, a support set of 98,304 projections, temperature 0.1, projector
2048-2048-256 and predictor 4096-256 with BatchNorm, LARS with 10 warmup epochs then
cosine over 1000 epochs, learning rate 0.3 x batch/256 and weight decay 1e-6,
synchronized BatchNorm. The paper uses BYOL's asymmetric augmentation; this config
uses the package's symmetric "simclr" policy. Stage 2: linear evaluation, Nesterov
SGD, 80 epochs. Reported (abstract): 75.6% top-1. Needs the TFDS `imagenet2012`
data, prepared by hand.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "nnclr"
    c.method_kwargs = dict(queue_size=98304, predictor_hidden_dims=(4096,))
    c.seed = 0
    c.precision = "mixed_bfloat16"
    c.deterministic = False
    c.steps_per_execution = 100
    c.checkpoint_every_steps = 2000
    c.keep_checkpoints = 2

    c.dataset = dict(name="imagenet2012", data_dir=None, train_split="train",
                     test_split="validation", shuffle_buffer=50_000)
    c.encoder = dict(name="resnet50", kwargs=dict(stem="imagenet", width_multiplier=1.0,
                                                  sync_batch_norm=True))
    c.head = dict(hidden_dims=(2048, 2048), output_dim=256, use_batch_norm=True,
                  sync_batch_norm=True, output_batch_norm=True, normalize=False)
    c.loss = dict(temperature=0.1)
    c.views = dict(policy="simclr", num_views=2, augment_on="host", image_size=(224, 224),
                   kwargs=dict(strength=1.0))

    c.pretrain = dict(epochs=1000, batch_size=4096, optimizer="lars",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.3,
                      lr_scaling="linear", warmup_epochs=10.0, weight_decay=1e-6,
                      schedule="cosine")
    c.linear = dict(epochs=80, batch_size=4096, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9, nesterov=True), learning_rate=0.1,
                    lr_scaling="linear", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="simclr")
    c.eval = dict(knn_every_epochs=50, knn_k=200, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.precision = "float32"
        c.steps_per_execution = 1
        c.encoder.kwargs.width_multiplier = 0.125
        c.encoder.kwargs.sync_batch_norm = False
        c.head.hidden_dims = (64, 64)
        c.head.sync_batch_norm = False
        c.views.image_size = (64, 64)
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 32
        c.method_kwargs.queue_size = 1024
        c.head.output_dim = 32
        c.method_kwargs.predictor_hidden_dims = (64,)
        c.linear.epochs = 1
        c.linear.batch_size = 32
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
