r"""InstDisc on CIFAR-10 with a ResNet-18 (CIFAR stem): the paper's CIFAR-10 setting.

  supcon-tf --config=configs/cifar10_instdisc.py --workdir=gs://BUCKET/cifar10_instdisc \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/cifar10_instdisc.py:local --workdir=/tmp/smoke   # tiny model

Wu, Xiong, Yu and Lin, "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination" (CVPR 2018), Sec. 4.1, with the released code's CIFAR-10 script
(zhirongw/lemniscate.pytorch `cifar.py`): ResNet-18, a linear 128-d L2-normalized
embedding, a memory bank of the 50,000 training images, NCE with m = 4,096 noise rows at
temperature 0.07 (the paper's; `cifar.py` defaults to 0.1), Z from the first batch,
bank momentum 0.5, the proximal term lambda = 30 (Sec. 3.4; the released code has none:
`--config.loss.proximal=0`); batch 128, SGD momentum 0.9, learning rate 0.03, weight
decay 5e-4, 200 epochs (the script steps the rate down 10x at epochs 120 and 160; here a
cosine decay); augmentation: random resized crop of area 0.2-1, colour jitter 0.4, 20%
grayscale, horizontal flip. Evaluation: weighted kNN against the bank (k = 200, T = 0.07,
`bank_knn_top1`; the paper reports about 80% on CIFAR-10, Table 1) and the linear
classifier of stage 2. Needs the TFDS `cifar10` data.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "instdisc"
    c.method_kwargs = dict(bank_size=50_000, num_noise=4096, bank_momentum=0.5,
                           normalizer="first_batch")
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
    c.head = dict(hidden_dims=(), output_dim=128, use_batch_norm=False, sync_batch_norm=False)
    c.loss = dict(temperature=0.07, proximal=30.0)
    c.views = dict(policy="simclr", num_views=1, augment_on="host", image_size=None,
                   kwargs=dict(strength=0.5, area_range=(0.2, 1.0), jitter_p=1.0,
                               blur=False))

    c.pretrain = dict(epochs=200, batch_size=128, optimizer="sgd",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.03,
                      lr_scaling="none", warmup_epochs=0.0, weight_decay=5e-4,
                      schedule="cosine")
    c.linear = dict(epochs=100, batch_size=256, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9, nesterov=True), learning_rate=0.1,
                    lr_scaling="linear", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="cifar")
    c.eval = dict(knn_every_epochs=10, knn_k=200, knn_temperature=0.07,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.encoder.kwargs.width_multiplier = 0.125
        c.encoder.kwargs.sync_batch_norm = False
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 64
        c.method_kwargs.num_noise = 256
        c.linear.epochs = 1
        c.linear.batch_size = 64
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
