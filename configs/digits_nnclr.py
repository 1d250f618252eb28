r"""NNCLR on the bundled handwritten digits: nearest neighbours from a support set as positives.

  supcon-tf --config=configs/digits_nnclr.py --workdir=/tmp/digits_nnclr
  supcon-tf --config=configs/digits_nnclr.py:local --workdir=/tmp/smoke   # seconds

NNCLR (Dwibedi et al., ICCV 2021): the positive of each view is its nearest neighbour
in a support set of past projections; the symmetric InfoNCE at temperature 0.1 puts
it against the other view's prediction, the other samples' predictions in the batch
as negatives; a 3-layer projector with BatchNorm on every layer (the loss
normalizes) and a predictor MLP. Scaled to the 1,437 training digits and 2 CPU cores
like digits_moco.py (small CNN, "digits" augmentation, Adam): a support set of 1,024
projections (the paper's 98,304 is 7.7% of ImageNet; here 4 batches, 71% of the data
set, so the neighbours are drawn from most of it), projector 128-128-64, predictor
256-64 (the paper's 4096-256 ratio).
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "nnclr"
    c.method_kwargs = dict(queue_size=1024, predictor_hidden_dims=(256,))
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
    c.head = dict(hidden_dims=(128, 128), output_dim=64, use_batch_norm=True,
                  sync_batch_norm=False, output_batch_norm=True, normalize=False)
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
        c.head.hidden_dims = (16, 16)
        c.head.output_dim = 8
        c.method_kwargs.predictor_hidden_dims = (16,)
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
