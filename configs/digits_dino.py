r"""DINO on the bundled handwritten digits, with a small ViT and multi-crop views.

  supcon-tf --config=configs/digits_dino.py --workdir=/tmp/digits_dino
  supcon-tf --config=configs/digits_dino.py:local --workdir=/tmp/smoke   # seconds

DINO (Caron et al., ICCV 2021) as the official recipe runs it, scaled to 8x8 digits:
a ViT (patches 2x2, width 64, 4 blocks, 4 heads; position embeddings learned at 8x8
and interpolated for the 4x4 local crops), 2 global crops (40-100% of the area, 8x8)
and 4 local crops (5-40%, 4x4), the teacher on the global crops only; the DINO head
(an MLP with GELU, hidden 256, bottleneck 64, L2-normalized, then 1,024 prototypes
with the last layer's norm fixed, frozen for the first epoch: 5 steps of 1,437 digits
at batch 256); teacher momentum 0.996 -> 1 by a cosine; teacher temperature 0.04 ->
0.07 over the first 10 epochs, student 0.1; center momentum 0.9; AdamW with weight
decay 0.04 -> 0.4 by a cosine, gradients clipped at norm 3 per variable. Then a
linear classifier on the frozen CLS token.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "dino"
    c.method_kwargs = dict(out_dim=1024, norm_last_layer=True, momentum=0.996,
                           momentum_schedule="cosine", freeze_last_layer_steps=5,
                           weight_decay_end=0.4)
    c.seed = 0
    c.precision = "float32"
    c.deterministic = False
    c.steps_per_execution = 1
    c.checkpoint_every_steps = 0
    c.keep_checkpoints = 2

    c.dataset = dict(name="digits", data_dir=None, train_split="train", test_split="test",
                     shuffle_buffer=2048)
    c.encoder = dict(name="vit_tiny", kwargs=dict(patch_size=2, image_size=(8, 8), dim=64,
                                                 depth=4, num_heads=4))
    c.head = dict(hidden_dims=(256, 256), output_dim=64, use_batch_norm=False,
                  sync_batch_norm=False, normalize=True, activation="gelu")
    c.loss = dict(student_temperature=0.1, teacher_temperature=0.07,
                  warmup_teacher_temperature=0.04, warmup_teacher_temperature_steps=50,
                  center_momentum=0.9)
    c.views = dict(policy="digits", num_views=2, augment_on="device", image_size=None,
                   kwargs={}, multicrop=dict(local_views=4, local_size=(4, 4),
                                             global_scale=(0.4, 1.0),
                                             local_scale=(0.05, 0.4)))

    c.pretrain = dict(epochs=60, batch_size=256, optimizer="adamw",
                      optimizer_kwargs=dict(clipnorm=3.0), learning_rate=1e-3,
                      lr_scaling="none", warmup_epochs=5.0, weight_decay=0.04,
                      schedule="cosine")
    c.linear = dict(epochs=30, batch_size=256, optimizer="adam", optimizer_kwargs={},
                    learning_rate=5e-2, lr_scaling="none", warmup_epochs=0.0,
                    weight_decay=0.0, schedule="cosine", augmentation="eval")
    c.eval = dict(knn_every_epochs=0, knn_k=20, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.pretrain.epochs = 2
        c.linear.epochs = 2
        c.encoder.kwargs.dim = 16
        c.encoder.kwargs.depth = 1
        c.encoder.kwargs.num_heads = 2
        c.head.hidden_dims = (16,)
        c.head.output_dim = 8
        c.method_kwargs.out_dim = 32
        c.loss.warmup_teacher_temperature_steps = 5
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
