r"""DINO on CIFAR-10 with a ViT-Tiny/4 and multi-crop: the paper's recipe at CIFAR scale.

  supcon-tf --config=configs/cifar10_dino.py --workdir=/tmp/cifar10_dino
  supcon-tf --config=configs/cifar10_dino.py:local --workdir=/tmp/smoke

The paper (Caron et al., ICCV 2021) reports no CIFAR-10 pretraining; this transfers its
ViT recipe (configs/imagenet_dino.py) to 32x32 images, as solo-learn's and lightly's
CIFAR benchmarks do: ViT-Tiny with 4x4 patches (an 8x8 grid), multi-crop 2 x 32x32
(40-100% of the area) + 6 x 16x16 (5-40%), the paper's head (MLP 2048-2048-256, GELU,
65,536 prototypes, the last layer's norm fixed: the official default), frozen for
the first epoch (97 steps at batch 512), teacher momentum 0.996 -> 1 by a cosine,
teacher temperature 0.04 -> 0.07 over 30 epochs (2,910 steps), student 0.1, center
momentum 0.9, AdamW at 0.0005 x batch/256 (10 warmup epochs, cosine decay), weight
decay 0.04 -> 0.4, gradients clipped at norm 3, batch 512, 800 epochs. No number is
claimed for it.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "dino"
    c.method_kwargs = dict(out_dim=65536, norm_last_layer=True, momentum=0.996,
                           momentum_schedule="cosine", freeze_last_layer_steps=97,
                           weight_decay_end=0.4)
    c.seed = 0
    c.precision = "mixed_bfloat16"
    c.deterministic = False
    c.steps_per_execution = 50
    c.checkpoint_every_steps = 0
    c.keep_checkpoints = 2

    c.dataset = dict(name="cifar10", data_dir=None, train_split="train", test_split="test",
                     shuffle_buffer=50_000)
    c.encoder = dict(name="vit_tiny", kwargs=dict(patch_size=4, image_size=(32, 32)))
    c.head = dict(hidden_dims=(2048, 2048), output_dim=256, use_batch_norm=False,
                  sync_batch_norm=False, normalize=True, activation="gelu")
    c.loss = dict(student_temperature=0.1, teacher_temperature=0.07,
                  warmup_teacher_temperature=0.04, warmup_teacher_temperature_steps=2910,
                  center_momentum=0.9)
    c.views = dict(policy="cifar", num_views=2, augment_on="device", image_size=None,
                   kwargs=dict(solarize_p=0.1),
                   multicrop=dict(local_views=6, local_size=(16, 16),
                                  global_scale=(0.4, 1.0), local_scale=(0.05, 0.4)))

    c.pretrain = dict(epochs=800, batch_size=512, optimizer="adamw",
                      optimizer_kwargs=dict(clipnorm=3.0), learning_rate=0.0005,
                      lr_scaling="linear", warmup_epochs=10.0, weight_decay=0.04,
                      schedule="cosine")
    c.linear = dict(epochs=100, batch_size=512, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9), learning_rate=0.1,
                    lr_scaling="linear", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="cifar")
    c.eval = dict(knn_every_epochs=50, knn_k=20, knn_temperature=0.07,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.precision = "float32"
        c.steps_per_execution = 1
        c.encoder.kwargs = dict(patch_size=4, image_size=(32, 32), dim=32, depth=1,
                                num_heads=2)
        c.head.hidden_dims = (64,)
        c.head.output_dim = 16
        c.method_kwargs.out_dim = 64
        c.method_kwargs.freeze_last_layer_steps = 1
        c.loss.warmup_teacher_temperature_steps = 2
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 32
        c.linear.epochs = 1
        c.linear.batch_size = 32
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
