r"""YADIM on the bundled handwritten digits, as a setting of the contrastive framework.

  supcon-tf --config=configs/digits_yadim.py --workdir=/tmp/digits_yadim
  supcon-tf --config=configs/digits_yadim.py:local --workdir=/tmp/smoke   # seconds

YADIM ("Yet Another DIM", Falcon & Cho, "A Framework For Contrastive Self-Supervised
Learning And Designing A New Approach", 2020) in its five choices:
  augmentation: CPC's and AMDIM's pipelines merged ("yadim": random resized crop, flip,
    reflected shift, colour jitter, grayscale), two views; on the digits no flip (it
    changes a digit), a 1-pixel shift and the digits' milder crop (>= 50% of the area);
  encoder: the small CNN (the paper: AMDIM's encoder);
  extraction: the last feature map of each view (the small CNN's 2x2 "block3"), every
    location of one view's against every location of the other's, both ways
    (extraction "amdim" with the single comparison "last-last" of all locations),
    each location embedded by the head;
  similarity: the dot product;
  loss: NCE, the other samples' locations of the global batch as negatives.
Scaled to the 1,437 training digits and 2 CPU cores like digits_simclr.py (Adam).
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "framework"
    c.method_kwargs = dict(extraction="amdim", similarity="dot",
                           extraction_kwargs=dict(maps={"last": "block3"},
                                                  comparisons=("last-last",),
                                                  source_location="all"))
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
                  sync_batch_norm=False, normalize=False)
    c.loss = dict(name="nce")
    c.views = dict(policy="yadim", num_views=2, augment_on="device", image_size=None,
                   kwargs=dict(area_range=(0.5, 1.0), aspect_range=(3 / 4, 4 / 3), flip=False,
                               translate=1))

    c.pretrain = dict(epochs=60, batch_size=256, optimizer="adam", optimizer_kwargs={},
                      learning_rate=2e-3, lr_scaling="none", warmup_epochs=2.0,
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
        c.encoder.kwargs.widths = (8, 16, 16)
        c.encoder.kwargs.dim = 16
        c.head.hidden_dims = (16,)
        c.head.output_dim = 8
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
