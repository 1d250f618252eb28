r"""Multi-similarity loss on the bundled handwritten digits.

  supcon-tf --config=configs/digits_multisimilarity.py --workdir=/tmp/digits_multisimilarity
  supcon-tf --config=configs/digits_multisimilarity.py:local --workdir=/tmp/smoke   # seconds

Metric learning (`method="metric"`): the encoder and projector trained end to end, one
view per image; the embedding (export's `project`) is what retrieval uses. Same
network, augmentation and optimizer as configs/digits_supcon.py; the multi-similarity
loss with its pair mining (Wang et al. 2019; alpha 2, beta 50, lambda 0.5, epsilon
0.1), in class-balanced batches of 8 classes x 32 images. Cross-batch memory (XBM, Wang
et al. 2020) is off; `--config.method_kwargs.xbm_size=1024
--config.method_kwargs.xbm_start_step=50` keeps the last 1,024 embeddings as extra pairs
from step 50 on.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "metric"
    c.method_kwargs = dict(xbm_size=0, xbm_start_step=0)
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
    c.loss = dict(name="multi_similarity", alpha=2.0, beta=50.0, base=0.5, epsilon=0.1)
    c.views = dict(policy="digits", num_views=1, augment_on="device", image_size=None,
                   kwargs={})

    c.pretrain = dict(epochs=60, batch_size=256, optimizer="adam", optimizer_kwargs={},
                      learning_rate=1e-2, lr_scaling="none", warmup_epochs=2.0,
                      weight_decay=0.0, schedule="cosine", samples_per_class=32)
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
