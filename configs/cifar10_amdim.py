r"""AMDIM on CIFAR-10 with a ResNet-18 (CIFAR stem), as a setting of the framework.

  supcon-tf --config=configs/cifar10_amdim.py --workdir=gs://BUCKET/cifar10_amdim \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/cifar10_amdim.py:local --workdir=/tmp/smoke   # tiny model

Follows Bachman et al., "Learning Representations by Maximizing Mutual Information
Across Views" (NeurIPS 2019) and its released code (amdim-public): two views; NCE
between the global feature of one view and every location of the other view's local
feature maps, and between one drawn location of a local map and another's (the 1-5,
1-7 and 5-5 comparisons), both ways, summed; scores = dot products / sqrt(dim) soft-
clipped at tclip = 20, with the code's penalty 5e-2 on their squares; embeddings of
1,024 dimensions (n_rkhs); Adam at the code's learning rate 2e-4; batch 480 as in the
CIFAR-10 commands of the released code. Deviations: the encoder is the package's
ResNet-18 (CIFAR stem) instead of AMDIM's own, so its 4x4 last stage and 8x8 third
stage stand for AMDIM's 5x5 and 7x7 maps and its pooled output for the 1x1 one; the
augmentation is the package's CIFAR recipe (crop, flip, colour jitter, grayscale);
150 epochs and a cosine schedule are this config's choice. Needs the TFDS `cifar10` data.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "framework"
    c.method_kwargs = dict(
        extraction="amdim", similarity="scaled_dot",
        extraction_kwargs=dict(maps={"r1": "output", "r5": "stage4", "r7": "stage3"},
                               comparisons=("r1-r5", "r1-r7", "r5-r5"),
                               source_location="random", seed=0))
    c.seed = 0
    c.precision = "float32"
    c.deterministic = False
    c.steps_per_execution = 1
    c.checkpoint_every_steps = 1000
    c.keep_checkpoints = 2

    c.dataset = dict(name="cifar10", data_dir=None, train_split="train", test_split="test",
                     shuffle_buffer=50_000)
    c.encoder = dict(name="resnet18", kwargs=dict(stem="cifar", width_multiplier=1.0,
                                                  sync_batch_norm=True))
    c.head = dict(hidden_dims=(1024,), output_dim=1024, use_batch_norm=True,
                  sync_batch_norm=True, normalize=False)
    c.loss = dict(name="nce", tclip=20.0, score_penalty=5e-2)
    c.views = dict(policy="cifar", num_views=2, augment_on="host", image_size=None,
                   kwargs=dict(strength=0.5))

    c.pretrain = dict(epochs=150, batch_size=480, optimizer="adam", optimizer_kwargs={},
                      learning_rate=2e-4, lr_scaling="none", warmup_epochs=0.0,
                      weight_decay=0.0, schedule="cosine")
    c.linear = dict(epochs=100, batch_size=512, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9, nesterov=True), learning_rate=0.1,
                    lr_scaling="linear", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="cifar")
    c.eval = dict(knn_every_epochs=10, knn_k=200, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.encoder.kwargs.width_multiplier = 0.125
        c.encoder.kwargs.sync_batch_norm = False
        c.head.sync_batch_norm = False
        c.head.hidden_dims = (32,)
        c.head.output_dim = 32
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 64
        c.linear.epochs = 1
        c.linear.batch_size = 64
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
