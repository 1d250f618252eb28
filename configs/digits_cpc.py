r"""CPC v2 on the bundled handwritten digits, as a setting of the contrastive framework.

  supcon-tf --config=configs/digits_cpc.py --workdir=/tmp/digits_cpc
  supcon-tf --config=configs/digits_cpc.py:local --workdir=/tmp/smoke   # seconds

CPC v2 (Hénaff et al., "Data-Efficient Image Recognition with Contrastive Predictive
Coding", ICML 2020) in the five choices of Falcon & Cho (2020):
  augmentation: the "digits" crop and jitter of the whole image, then CPC's per-patch
    augmentation ("cpc_patches": each patch cropped at random and resized back; no flip
    and no colour dropping on grayscale digits);
  encoder: the "patches" encoder: the 8x8 image cut into a 3x3 grid of 4x4 patches
    overlapping by half (CPC v2: 64-pixel patches overlapping by 32), each encoded by the
    small CNN; its representation is their mean over the grid (CPC's linear evaluation);
  extraction: "cpc": a masked, row-causal context network over the grid, linear
    predictions of the (linearly projected: `head`) patch features 1 and 2 rows ahead,
    top-down and bottom-up (CPC v2 predicts in several directions);
  similarity: the dot product;
  loss: NCE (InfoNCE) with every other patch of the global batch, of the same image too,
    as a negative.
One view per image. Scaled to the 1,437 training digits and 2 CPU cores like
digits_simclr.py (small CNN with BatchNorm, where CPC v2 uses LayerNorm; Adam).
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "framework"
    c.method_kwargs = dict(extraction="cpc", similarity="dot",
                           extraction_kwargs=dict(steps=2, directions=("down", "up"),
                                                  context=dict(width=64, num_blocks=2)))
    c.seed = 0
    c.precision = "float32"
    c.deterministic = False
    c.steps_per_execution = 1
    c.checkpoint_every_steps = 0
    c.keep_checkpoints = 2

    c.dataset = dict(name="digits", data_dir=None, train_split="train", test_split="test",
                     shuffle_buffer=2048)
    c.encoder = dict(name="patches", kwargs=dict(
        encoder="small_cnn", encoder_kwargs=dict(widths=(32, 64, 128), dim=128),
        patch_size=4, overlap=2, augmentation="cpc_patches",
        augmentation_kwargs=dict(area_range=(0.6, 1.0), flip=False, color_drop_p=0.0),
        seed=0))
    c.head = dict(hidden_dims=(), output_dim=64, use_batch_norm=False, sync_batch_norm=False,
                  normalize=False)
    c.loss = dict(name="nce")
    c.views = dict(policy="digits", num_views=1, augment_on="device", image_size=None,
                   kwargs={})

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
        c.encoder.kwargs.encoder_kwargs.widths = (8, 16)
        c.encoder.kwargs.encoder_kwargs.dim = 16
        c.method_kwargs.extraction_kwargs.context.width = 8
        c.head.output_dim = 8
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
