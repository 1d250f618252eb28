r"""DINO on the bundled handwritten digits, with multi-crop views.

  supcon-tf --config=configs/digits_dino.py --workdir=/tmp/digits_dino
  supcon-tf --config=configs/digits_dino.py:local --workdir=/tmp/smoke   # seconds

DINO (Caron et al., ICCV 2021) as the official recipe runs it, scaled to 8x8 digits
and a 2-core CPU: the small CNN of digits_swav.py (a ViT, `encoder.name=vit_tiny`
with `patch_size=2`, runs too but trains several times slower here), 2 global crops
(40-100% of the area, 8x8) and 4 local crops (5-40%, 4x4), the teacher on the global
crops only; the DINO head (an MLP with GELU, no BatchNorm, hidden 256, bottleneck 64,
L2-normalized, then 256 prototypes with the last layer's norm fixed, frozen for the
first epoch: 5 steps of 1,437 digits at batch 256); teacher momentum 0.99 -> 1 by a
cosine (0.996 is for far longer runs than these 150 steps); teacher temperature 0.04,
student 0.1 (the official defaults); center momentum 0.9; AdamW with weight decay
0.04 -> 0.4 by a cosine and the paper's learning rate 0.0005 (at 0.003 the teacher's
output went near uniform, the loss to log 256, linear top-1 0.88), gradients clipped at
norm 3 per variable. Then a linear classifier on the frozen encoder.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "dino"
    c.method_kwargs = dict(out_dim=256, norm_last_layer=True, momentum=0.99,
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
    c.encoder = dict(name="small_cnn",
                     kwargs=dict(widths=(32, 64, 128), dim=128, sync_batch_norm=False))
    c.head = dict(hidden_dims=(256, 256), output_dim=64, use_batch_norm=False,
                  sync_batch_norm=False, normalize=True, activation="gelu")
    c.loss = dict(student_temperature=0.1, teacher_temperature=0.04,
                  warmup_teacher_temperature=0.04, warmup_teacher_temperature_steps=0,
                  center_momentum=0.9)
    c.views = dict(policy="digits", num_views=2, augment_on="device", image_size=None,
                   kwargs={}, multicrop=dict(local_views=4, local_size=(4, 4),
                                             global_scale=(0.4, 1.0),
                                             local_scale=(0.05, 0.4)))

    c.pretrain = dict(epochs=30, batch_size=256, optimizer="adamw",
                      optimizer_kwargs=dict(clipnorm=3.0), learning_rate=5e-4,
                      lr_scaling="none", warmup_epochs=2.0, weight_decay=0.04,
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
        c.encoder.kwargs.widths = (8, 16)
        c.encoder.kwargs.dim = 16
        c.head.hidden_dims = (16,)
        c.head.output_dim = 8
        c.method_kwargs.out_dim = 32
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
