r"""SimSiam on the bundled handwritten digits: no negatives, a predictor and stop-gradient.

  supcon-tf --config=configs/digits_simsiam.py --workdir=/tmp/digits_simsiam
  supcon-tf --config=configs/digits_simsiam.py:local --workdir=/tmp/smoke

The setting of SimSiam (Chen & He, CVPR 2021): two augmented views per image, a
3-layer projector with BatchNorm on every layer (its output included, no ReLU
there), a bottleneck predictor (dim / 4), the symmetrized negative cosine with
stop-gradient on the targets; the metric `collapse_std` is the paper's collapse
indicator (about 1/sqrt(dim) when healthy). Then a linear classifier on the frozen
encoder. The scaled-down model, data and schedule of digits_supcon.py, Adam instead
of SGD.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "simsiam"
    c.method_kwargs = dict(predictor_dim=32)
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
    c.head = dict(hidden_dims=(128, 128), output_dim=128, use_batch_norm=True,
                  sync_batch_norm=False, output_batch_norm=True, normalize=False)
    c.loss = {}
    c.views = dict(policy="digits", num_views=2, augment_on="device", image_size=None,
                   kwargs={})

    c.pretrain = dict(epochs=60, batch_size=256, optimizer="adam", optimizer_kwargs={},
                      learning_rate=3e-3, lr_scaling="none", warmup_epochs=2.0,
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
        c.head.hidden_dims = (16, 16)
        c.head.output_dim = 16
        c.method_kwargs.predictor_dim = 4
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
