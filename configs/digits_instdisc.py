r"""InstDisc on the bundled handwritten digits: instance discrimination with a memory bank.

  supcon-tf --config=configs/digits_instdisc.py --workdir=/tmp/digits_instdisc
  supcon-tf --config=configs/digits_instdisc.py:local --workdir=/tmp/smoke   # seconds

InstDisc (Wu et al., CVPR 2018): one augmented view per image, its L2-normalized 128-d
embedding scored against a memory bank of one row per training image (the positive: its
own row; m rows drawn uniformly as noise) by NCE at temperature 0.07, the proximal term
with lambda 30, bank rows updated with momentum 0.5; the
weighted kNN of the test digits against the bank (k 200, temperature 0.07) lands in
metrics.json as `bank_knn_top1`. Scaled to the 1,437 training digits and 2 CPU cores
like digits_moco.py (small CNN, "digits" augmentation, Adam): a bank of 1,437 rows and
m = 512 noise rows (the paper's 4,096 is 3x this data set), and more epochs, since each
bank row moves once per epoch. The head is the paper's single linear layer to 128 dims.

Z per sample (the paper's Monte Carlo formula), not the released code's one estimate on
the first batch: that estimate sees a random bank, and on 1,437 digits, whose features
start out close to each other, the bank soon holds rows far more alike than random ones,
so Z is too small by orders of magnitude and the noise terms grow. Measured over 15
epochs (`--mode=pretrain --config.pretrain.epochs=15 --config.eval.knn_every_epochs=5`):
with `--config.method_kwargs.normalizer=first_batch` the loss rose from 117 to 3110 and
the encoder's kNN top-1 (k 20) fell from 0.88 to 0.58; per sample the loss fell from 73
to 7.2 and the kNN top-1 rose from 0.92 to 0.93.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "instdisc"
    c.method_kwargs = dict(bank_size=1437, num_noise=512, bank_momentum=0.5,
                           normalizer="per_sample")
    c.seed = 0
    c.precision = "float32"
    c.deterministic = False
    c.steps_per_execution = 1
    c.checkpoint_every_steps = 0
    c.keep_checkpoints = 2

    c.dataset = dict(name="digits", data_dir=None, train_split="train", test_split="test",
                     shuffle_buffer=2048)
    c.encoder = dict(name="small_cnn",
                     kwargs=dict(widths=(32, 64, 128), dim=128, sync_batch_norm=False))
    c.head = dict(hidden_dims=(), output_dim=128, use_batch_norm=False,
                  sync_batch_norm=False)
    c.loss = dict(temperature=0.07, proximal=30.0)
    c.views = dict(policy="digits", num_views=1, augment_on="device", image_size=None,
                   kwargs={})

    c.pretrain = dict(epochs=100, batch_size=128, optimizer="adam", optimizer_kwargs={},
                      learning_rate=3e-3, lr_scaling="none", warmup_epochs=2.0,
                      weight_decay=0.0, schedule="cosine")
    c.linear = dict(epochs=30, batch_size=256, optimizer="adam", optimizer_kwargs={},
                    learning_rate=5e-2, lr_scaling="none", warmup_epochs=0.0,
                    weight_decay=0.0, schedule="cosine", augmentation="eval")
    c.eval = dict(knn_every_epochs=0, knn_k=20, knn_temperature=0.07,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.pretrain.epochs = 2
        c.linear.epochs = 2
        c.method_kwargs.num_noise = 16
        c.encoder.kwargs.widths = (8, 16)
        c.encoder.kwargs.dim = 16
        c.head.output_dim = 8
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
