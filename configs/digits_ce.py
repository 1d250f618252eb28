r"""Cross-entropy baseline on the bundled handwritten digits (compare digits_supcon.py).

  supcon-tf --config=configs/digits_ce.py --workdir=/tmp/digits_ce
  supcon-tf --config=configs/digits_ce.py:local --workdir=/tmp/smoke   # seconds

The baseline of Khosla et al. (NeurIPS 2020): the same encoder with a linear head
trained end to end with softmax cross-entropy on one augmented view per image, the
same augmentation, optimizer and schedule as digits_supcon.py. There is no stage 2:
the linear stage evaluates this classifier on the test split.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "ce"
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
    c.views = dict(policy="digits", num_views=1, augment_on="host", image_size=None,
                   kwargs={})

    c.pretrain = dict(epochs=60, batch_size=256, optimizer="adam", optimizer_kwargs={},
                      learning_rate=1e-2, lr_scaling="none", warmup_epochs=2.0,
                      weight_decay=0.0, schedule="cosine")
    c.linear = dict(epochs=1, batch_size=256, optimizer="adam", optimizer_kwargs={},
                    learning_rate=1e-2, lr_scaling="none", warmup_epochs=0.0,
                    weight_decay=0.0, schedule="cosine", augmentation="eval")
    c.eval = dict(knn_every_epochs=0, knn_k=20, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.pretrain.epochs = 2
        c.encoder.kwargs.widths = (8, 16)
        c.encoder.kwargs.dim = 16
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
