r"""VICReg on the bundled handwritten digits: variance, invariance, covariance, no negatives.

  supcon-tf --config=configs/digits_vicreg.py --workdir=/tmp/digits_vicreg
  supcon-tf --config=configs/digits_vicreg.py:local --workdir=/tmp/smoke   # seconds

VICReg (Bardes et al., ICLR 2022): two augmented views per image through one network
and expander; the loss is 25 x the views' mean squared difference + 25 x a hinge
keeping each dimension's std over the global batch at 1 (epsilon 1e-4) + 1 x the
squared off-diagonal covariances / dim (the paper's coefficients). The paper's
expander is 8192-8192-8192; here 3 layers of 256 (not L2-normalized, which the
variance term needs) for the scaled-down encoder of digits_simsiam.py, with its data,
schedule and Adam.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "vicreg"
    c.method_kwargs = {}
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
    c.head = dict(hidden_dims=(256, 256), output_dim=256, use_batch_norm=True,
                  sync_batch_norm=False, output_batch_norm=False, normalize=False)
    c.loss = dict(invariance_weight=25.0, variance_weight=25.0, covariance_weight=1.0)
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
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
