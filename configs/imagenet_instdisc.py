r"""InstDisc on ImageNet with a ResNet-50: the paper's main setting.

  supcon-tf --config=configs/imagenet_instdisc.py --workdir=gs://BUCKET/imagenet_instdisc \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/imagenet_instdisc.py:local --workdir=/tmp/smoke   # tiny model

Wu, Xiong, Yu and Lin, "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination" (CVPR 2018) and the released zhirongw/lemniscate.pytorch `main.py`:
ResNet-50, a linear 128-d L2-normalized embedding, a memory bank of the 1,281,167
training images, NCE with m = 4,096 noise rows at temperature 0.07, Z from the first
batch, bank momentum 0.5, the proximal term lambda = 30 (Sec. 3.4; not in the released
code: `--config.loss.proximal=0`); batch 256, SGD momentum 0.9, learning rate 0.03,
weight decay 1e-4, 200 epochs (the paper steps the rate down 10x at 120 and 160; here a
cosine decay); augmentation: random resized crop of area 0.2-1, colour jitter 0.4, 20%
grayscale, horizontal flip. Evaluation: weighted kNN against the bank (k = 200,
T = 0.07, `bank_knn_top1`) and a linear classifier (the paper reports 54.0% top-1 for
ResNet-50 with a linear classifier, Table 2). Needs the TFDS `imagenet2012` data,
prepared by hand. The bank holds 1.28 M x 128 floats (656 MB) on every replica.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "instdisc"
    c.method_kwargs = dict(bank_size=1_281_167, num_noise=4096, bank_momentum=0.5,
                           normalizer="first_batch")
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
    c.head = dict(hidden_dims=(), output_dim=128, use_batch_norm=False, sync_batch_norm=False)
    c.loss = dict(temperature=0.07, proximal=30.0)
    c.views = dict(policy="simclr", num_views=1, augment_on="host", image_size=(224, 224),
                   kwargs=dict(strength=0.5, area_range=(0.2, 1.0), jitter_p=1.0,
                               blur=False))

    c.pretrain = dict(epochs=200, batch_size=256, optimizer="sgd",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.03,
                      lr_scaling="linear", warmup_epochs=0.0, weight_decay=1e-4,
                      schedule="cosine")
    c.linear = dict(epochs=100, batch_size=256, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9), learning_rate=30.0,
                    lr_scaling="none", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="simclr")
    c.eval = dict(knn_every_epochs=50, knn_k=200, knn_temperature=0.07,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.precision = "float32"
        c.steps_per_execution = 1
        c.encoder.kwargs.width_multiplier = 0.125
        c.views.image_size = (64, 64)
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 32
        c.method_kwargs.num_noise = 256
        c.linear.epochs = 1
        c.linear.batch_size = 32
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
