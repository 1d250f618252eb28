r"""SwAV on the bundled handwritten digits, with multi-crop views.

  supcon-tf --config=configs/digits_swav.py --workdir=/tmp/digits_swav
  supcon-tf --config=configs/digits_swav.py:local --workdir=/tmp/smoke

The setting of SwAV (Caron et al., NeurIPS 2020): 2 global crops (35-100% of the
area, 8x8) and 4 local crops (10-35%, 4x4) per image, projections scored against
30 L2-normalized prototypes (frozen for the first epoch: 5 steps of 1,437 digits at
batch 256), codes by Sinkhorn-Knopp (epsilon 0.05, 3 iterations) on the global
batch, swapped prediction of each global crop's code from every other crop at
temperature 0.1. Then a linear classifier on the frozen encoder. The scaled-down
model and data of digits_supcon.py, Adam instead of LARS; no queue.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "swav"
    # queue_size > 0 adds SwAV's queue (at least the batch size; from queue_start_steps).
    c.method_kwargs = dict(num_prototypes=30, freeze_prototypes_steps=5, queue_size=0,
                           queue_start_steps=0)
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
    c.loss = dict(temperature=0.1, epsilon=0.05, sinkhorn_iterations=3)
    c.views = dict(policy="digits", num_views=2, augment_on="device", image_size=None,
                   kwargs={}, multicrop=dict(local_views=4, local_size=(4, 4),
                                             global_scale=(0.35, 1.0),
                                             local_scale=(0.1, 0.35)))

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
        c.head.hidden_dims = (16,)
        c.head.output_dim = 8
        c.method_kwargs.num_prototypes = 10
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
