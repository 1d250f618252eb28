r"""SupCon on the bundled handwritten digits: the offline default run.

  supcon-tf                                        # this config, into ./runs/<time>
  supcon-tf --config=configs/digits_supcon.py --workdir=/tmp/digits_supcon
  supcon-tf --config=configs/digits_supcon.py:local --workdir=/tmp/smoke   # seconds

The setting of the SupCon paper (Khosla et al., NeurIPS 2020, Sec. 4): two augmented
views per image, the SupCon loss L^sup_out at temperature 0.1 on L2-normalized
projections, then a linear classifier trained on the frozen encoder. Scaled down to
scikit-learn's 1,797 8x8 digit images (so it runs offline on 2 CPU cores in a few
minutes): a small CNN instead of a ResNet, the "digits" augmentation (small crops and
shifts; no flips, which change a digit's meaning), Adam instead of LARS.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "supcon"
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
    c.head = dict(hidden_dims=(128,), output_dim=64, use_batch_norm=True,
                  sync_batch_norm=False)
    c.loss = dict(temperature=0.1)
    c.views = dict(policy="digits", num_views=2, augment_on="device", image_size=None,
                   kwargs={})

    c.pretrain = dict(epochs=60, batch_size=256, optimizer="adam", optimizer_kwargs={},
                      learning_rate=1e-2, lr_scaling="none", warmup_epochs=2.0,
                      weight_decay=0.0, schedule="cosine")
    c.linear = dict(epochs=30, batch_size=256, optimizer="adam", optimizer_kwargs={},
                    learning_rate=5e-2, lr_scaling="none", warmup_epochs=0.0,
                    weight_decay=0.0, schedule="cosine", augmentation="eval")
    c.eval = dict(knn_every_epochs=0, knn_k=20, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.pretrain.epochs = 2
        c.linear.epochs = 2
        c.encoder.kwargs.widths = (8, 16)
        c.encoder.kwargs.dim = 16
        c.head.hidden_dims = (16,)
        c.head.output_dim = 8
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
