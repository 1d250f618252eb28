r"""YADIM on STL-10 at 64 pixels with a ResNet-18, as a setting of the framework.

  supcon-tf --config=configs/stl10_yadim.py --workdir=gs://BUCKET/stl10_yadim \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/stl10_yadim.py:local --workdir=/tmp/smoke   # tiny model

From Falcon & Cho, "A Framework For Contrastive Self-Supervised Learning And Designing A New
Approach" (2020), which reports YADIM on CIFAR-10, STL-10 and ImageNet (at 128 pixels, as
AMDIM): CPC's and AMDIM's augmentation pipelines merged ("yadim": random resized crop, flip,
reflected shift of up to 8 pixels, colour jitter, grayscale), two views; the encoder's last
feature map of each view ("stage4"), every location of one view's against every location of
the other's, both ways; the dot product; NCE with the other samples of the global batch as
negatives. Not the paper's: a ResNet instead of AMDIM's encoder; the optimizer (Adam at
2e-4, AMDIM's released setting), schedule and batch size are chosen here. Needs the TFDS
`stl10` data.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "framework"
    c.method_kwargs = dict(extraction="amdim", similarity="dot",
                           extraction_kwargs=dict(maps={"last": "stage4"},
                                                  comparisons=("last-last",),
                                                  source_location="all"))
    c.seed = 0
    c.precision = "float32"
    c.deterministic = False
    c.steps_per_execution = 1
    c.checkpoint_every_steps = 1000
    c.keep_checkpoints = 2

    c.dataset = dict(name="stl10", data_dir=None, train_split="train", test_split="test",
                     shuffle_buffer=50_000)
    c.encoder = dict(name="resnet18", kwargs=dict(stem="cifar", width_multiplier=1.0,
                                                  sync_batch_norm=True))
    c.head = dict(hidden_dims=(1024,), output_dim=256, use_batch_norm=True,
                  sync_batch_norm=True, normalize=False)
    c.loss = dict(name="nce")
    c.views = dict(policy="yadim", num_views=2, augment_on="host", image_size=(64, 64),
                   kwargs=dict(translate=8))

    c.pretrain = dict(epochs=200, batch_size=256, optimizer="adam", optimizer_kwargs={},
                      learning_rate=2e-4, lr_scaling="none", warmup_epochs=0.0,
                      weight_decay=0.0, schedule="constant")
    c.linear = dict(epochs=100, batch_size=256, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9, nesterov=True), learning_rate=0.1,
                    lr_scaling="linear", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="eval")
    c.eval = dict(knn_every_epochs=0, knn_k=200, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.encoder.kwargs.width_multiplier = 0.125
        c.encoder.kwargs.sync_batch_norm = False
        c.head.hidden_dims = (16,)
        c.head.output_dim = 8
        c.head.sync_batch_norm = False
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 32
        c.linear.epochs = 1
        c.linear.batch_size = 32
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
