r"""VICReg on ImageNet with a ResNet-50: the paper's main setting.

  supcon-tf --config=configs/imagenet_vicreg.py --workdir=gs://BUCKET/imagenet_vicreg \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/imagenet_vicreg.py:local --workdir=/tmp/smoke   # tiny model

Follows Bardes et al., "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning" (ICLR 2022), Sec. 4.1 and Appendix C, and the released code
(facebookresearch/vicreg): ResNet-50, batch 2048, LARS with learning rate 0.2 x
batch/256, weight decay 1e-6, 10 warmup epochs then cosine over 1000 epochs, the
expander's 3 layers of 8192 (not L2-normalized), coefficients 25 / 25 / 1 for the
invariance, variance (epsilon 1e-4) and covariance terms, the variance and
covariance over the global batch, synchronized BatchNorm. The paper's augmentation
is BYOL's asymmetric one; this config uses the symmetric "simclr" policy. Stage 2:
linear evaluation, 100 epochs. Reported: 73.2% top-1. Needs the TFDS `imagenet2012`
data, prepared by hand.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "vicreg"
    c.method_kwargs = {}
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
    c.head = dict(hidden_dims=(8192, 8192), output_dim=8192, use_batch_norm=True,
                  sync_batch_norm=True, output_batch_norm=False, normalize=False)
    c.loss = dict(invariance_weight=25.0, variance_weight=25.0, covariance_weight=1.0)
    c.views = dict(policy="simclr", num_views=2, augment_on="host", image_size=(224, 224),
                   kwargs=dict(strength=1.0))

    c.pretrain = dict(epochs=1000, batch_size=2048, optimizer="lars",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.2,
                      lr_scaling="linear", warmup_epochs=10.0, weight_decay=1e-06,
                      schedule="cosine")
    c.linear = dict(epochs=100, batch_size=256, optimizer="sgd",
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
        c.head.output_dim = 64
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
