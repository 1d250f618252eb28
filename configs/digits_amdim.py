r"""AMDIM on the bundled handwritten digits, as a setting of the contrastive framework.

  supcon-tf --config=configs/digits_amdim.py --workdir=/tmp/digits_amdim
  supcon-tf --config=configs/digits_amdim.py:local --workdir=/tmp/smoke   # seconds

AMDIM (Bachman et al., "Learning Representations by Maximizing Mutual Information Across
Views", NeurIPS 2019) in the five choices of Falcon & Cho (2020), method "framework":
two augmented views; the encoder's feature maps at three scales; the global feature of
one view against every location of the other view's local maps and one location of a
local map against another's (the paper's 1-5, 1-7 and 5-5 comparisons), both ways; the
released code's scores (dot products / sqrt(dim), "scaled_dot"); NCE with the scores
soft-clipped at tclip = 20 and the code's penalty 5e-2 on their squares. Scaled to the
1,437 training digits like digits_simclr.py (small CNN, "digits" augmentation, Adam):
the 8x8 digits give the small CNN 8x8, 4x4 and 2x2 maps, so AMDIM's 1x1 / 5x5 / 7x7
scales are its pooled output ("r1", as the released code names them), its 2x2 block
("r5") and its 4x4 block ("r7"); each scale is embedded by its own copy of the head
(AMDIM's 1x1-conv embeddings).
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "framework"
    c.method_kwargs = dict(
        extraction="amdim", similarity="scaled_dot",
        extraction_kwargs=dict(maps={"r1": "output", "r5": "block3", "r7": "block2"},
                               comparisons=("r1-r5", "r1-r7", "r5-r5"),
                               source_location="random", seed=0))
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
    c.loss = dict(name="nce", tclip=20.0, score_penalty=5e-2)
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
        c.encoder.kwargs.widths = (8, 16, 16)
        c.encoder.kwargs.dim = 16
        c.head.hidden_dims = (16,)
        c.head.output_dim = 8
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
