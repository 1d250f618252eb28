r"""SupCon on ImageNet with a ResNet-50: the paper's main ImageNet setting.

  supcon-tf --config=configs/imagenet_supcon.py --workdir=gs://BUCKET/imagenet_supcon \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/imagenet_supcon.py:local --workdir=/tmp/smoke   # tiny model

Follows Khosla et al., "Supervised Contrastive Learning" (NeurIPS 2020), ImageNet
ResNet-50: two views, batch 6144 (the paper's largest for ResNet-50), SupCon
L^sup_out at temperature 0.1, LARS with a linear-warmup (10 epochs) cosine schedule,
700 epochs, AutoAugment views at 224x224, synchronized BatchNorm, mixed bfloat16
on TPU; the projection head is 2048-2048-128. The LARS learning rate (0.3 x batch/256)
and weight decay (1e-6) are SimCLR's ImageNet values, this config's choice where the
paper's own are not restated here. Stage 2: a linear
classifier on the frozen 2048-d representation, SimCLR's protocol (Nesterov SGD,
0.1 x batch/256, batch 4096, 90 epochs, crop + flip). Reported: 78.7% top-1 (the
paper's AutoAugment ResNet-50). Needs the TFDS `imagenet2012` data, prepared by hand.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "supcon"
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
    c.head = dict(hidden_dims=(2048,), output_dim=128, use_batch_norm=True,
                  sync_batch_norm=True)
    c.loss = dict(temperature=0.1)
    c.views = dict(policy="autoaugment", num_views=2, augment_on="host",
                   image_size=(224, 224), kwargs={})

    c.pretrain = dict(epochs=700, batch_size=6144, optimizer="lars",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.3,
                      lr_scaling="linear", warmup_epochs=10.0, weight_decay=1e-6,
                      schedule="cosine")
    c.linear = dict(epochs=90, batch_size=4096, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9, nesterov=True), learning_rate=0.1,
                    lr_scaling="linear", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="simclr")
    c.eval = dict(knn_every_epochs=50, knn_k=200, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.precision = "float32"
        c.steps_per_execution = 1
        c.encoder.name = "resnet18"
        c.encoder.kwargs.width_multiplier = 0.125
        c.encoder.kwargs.sync_batch_norm = False
        c.head.hidden_dims = (64,)
        c.head.sync_batch_norm = False
        c.views.image_size = (64, 64)
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 32
        c.linear.epochs = 1
        c.linear.batch_size = 32
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
