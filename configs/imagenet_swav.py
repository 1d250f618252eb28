r"""SwAV on ImageNet with a ResNet-50 and multi-crop: the paper's main setting.

  supcon-tf --config=configs/imagenet_swav.py --workdir=gs://BUCKET/imagenet_swav \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/imagenet_swav.py:local --workdir=/tmp/smoke

Follows Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments" (NeurIPS 2020): ResNet-50, multi-crop 2 x 224x224 (14-100% of the area)
+ 6 x 96x96 (5-14%), SimCLR's colour distortion and blur on every crop, projection
head 2048-128, 3000 prototypes frozen for the first epoch (312 steps at batch 4096),
Sinkhorn-Knopp with epsilon 0.05 and 3 iterations on the global batch, temperature
0.1, LARS with learning rate 0.6 x batch/256 (the paper: 4.8 at 4096), weight decay
1e-6, cosine decay, 800 epochs, synchronized BatchNorm. Stage 2: linear evaluation on
the frozen representation. Reported: 75.3% top-1. Needs the TFDS `imagenet2012` data,
prepared by hand. No queue (batch 4096 does not need one).
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "swav"
    c.method_kwargs = dict(num_prototypes=3000, freeze_prototypes_steps=312)
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
    c.loss = dict(temperature=0.1, epsilon=0.05, sinkhorn_iterations=3)
    c.views = dict(policy="simclr", num_views=2, augment_on="host", image_size=(224, 224),
                   kwargs=dict(strength=1.0),
                   multicrop=dict(local_views=6, local_size=(96, 96),
                                  global_scale=(0.14, 1.0), local_scale=(0.05, 0.14)))

    c.pretrain = dict(epochs=800, batch_size=4096, optimizer="lars",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.6,
                      lr_scaling="linear", warmup_epochs=10.0, weight_decay=1e-6,
                      schedule="cosine")
    c.linear = dict(epochs=100, batch_size=4096, optimizer="sgd",
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
        c.head.hidden_dims = (64,)
        c.head.sync_batch_norm = False
        c.method_kwargs.num_prototypes = 30
        c.method_kwargs.freeze_prototypes_steps = 1
        c.views.image_size = (64, 64)
        c.views.multicrop.local_size = (32, 32)
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 32
        c.linear.epochs = 1
        c.linear.batch_size = 32
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
