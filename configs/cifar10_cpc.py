r"""CPC v2 on CIFAR-10 with a ResNet-18, as a setting of the contrastive framework.

  supcon-tf --config=configs/cifar10_cpc.py --workdir=gs://BUCKET/cifar10_cpc \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/cifar10_cpc.py:local --workdir=/tmp/smoke   # tiny model

From Hénaff et al., "Data-Efficient Image Recognition with Contrastive Predictive Coding"
(ICML 2020): the image cut into a 7x7 grid of 8-pixel patches overlapping by 4 (the CPC port
of PyTorch Lightning Bolts, written by the YADIM paper's authors); each patch augmented on
its own (spatial jitter, flip, colour dropping: two of the three channels dropped) and
encoded by a ResNet; a masked, autoregressive context network over the grid of features;
linear predictions of the patch features k rows ahead, from several directions (here top-
down and bottom-up); InfoNCE with every other patch of the global batch as a negative;
linear evaluation on the patch features mean-pooled over the grid. The ResNet uses layer
normalization in place of BatchNorm, as CPC v2 does (`norm="layer"`: no statistic crosses
the patches of a batch). Not the paper's: the optimizer, schedule, batch size and K = 3 rows
ahead are chosen here, not taken from the paper. Needs the TFDS `cifar10` data.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "framework"
    c.method_kwargs = dict(extraction="cpc", similarity="dot",
                           extraction_kwargs=dict(steps=3, directions=("down", "up"),
                                                  context=dict(width=512, num_blocks=4)))
    c.seed = 0
    c.precision = "float32"
    c.deterministic = False
    c.steps_per_execution = 1
    c.checkpoint_every_steps = 1000
    c.keep_checkpoints = 2

    c.dataset = dict(name="cifar10", data_dir=None, train_split="train", test_split="test",
                     shuffle_buffer=50_000)
    c.encoder = dict(name="patches", kwargs=dict(
        encoder="resnet18", encoder_kwargs=dict(stem="cifar", norm="layer"),
        patch_size=8, overlap=4, augmentation="cpc_patches",
        augmentation_kwargs=dict(area_range=(0.6, 1.0)), seed=0))
    c.head = dict(hidden_dims=(), output_dim=128, use_batch_norm=False, sync_batch_norm=False,
                  normalize=False)
    c.loss = dict(name="nce")
    c.views = dict(policy="cpc", num_views=1, augment_on="host", image_size=(32, 32),
                   kwargs=dict(area_range=(0.3, 1.0)))

    c.pretrain = dict(epochs=200, batch_size=256, optimizer="adam", optimizer_kwargs={},
                      learning_rate=4e-4, lr_scaling="none", warmup_epochs=5.0,
                      weight_decay=0.0, schedule="cosine")
    c.linear = dict(epochs=100, batch_size=256, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9, nesterov=True), learning_rate=0.1,
                    lr_scaling="linear", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="eval")
    c.eval = dict(knn_every_epochs=0, knn_k=200, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.encoder.kwargs.encoder = "small_cnn"
        c.encoder.kwargs.encoder_kwargs = dict(widths=(8, 16), dim=16)
        c.method_kwargs.extraction_kwargs.context.width = 8
        c.head.output_dim = 8
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 32
        c.linear.epochs = 1
        c.linear.batch_size = 32
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
