r"""SwAV on CIFAR-10 with a ResNet-18 (CIFAR stem), with multi-crop views.

  supcon-tf --config=configs/cifar10_swav.py --workdir=gs://BUCKET/cifar10_swav \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/cifar10_swav.py:local --workdir=/tmp/smoke

SwAV (Caron et al., NeurIPS 2020) scaled to 32x32 images: 2 global crops of 32x32
(14-100% of the area) and 4 local crops of 16x16 (5-14%), SimCLR's CIFAR colour
augmentation on every crop, 3000 prototypes frozen for the first epoch (97 steps at
batch 512), Sinkhorn-Knopp with epsilon 0.05 and 3 iterations on the global batch,
temperature 0.1, LARS with learning rate 0.6 x batch/256, weight decay 1e-6, 10
warmup epochs then cosine decay, 800 epochs, projection head 2048-128 with
BatchNorm. The paper reports no CIFAR run; these are the ImageNet settings at this
resolution. Needs the TFDS `cifar10` data.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "swav"
    c.method_kwargs = dict(num_prototypes=3000, freeze_prototypes_steps=97)
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
    c.head = dict(hidden_dims=(2048,), output_dim=128, use_batch_norm=True,
                  sync_batch_norm=True)
    c.loss = dict(temperature=0.1, epsilon=0.05, sinkhorn_iterations=3)
    c.views = dict(policy="cifar", num_views=2, augment_on="host", image_size=None,
                   kwargs=dict(strength=0.5),
                   multicrop=dict(local_views=4, local_size=(16, 16),
                                  global_scale=(0.14, 1.0), local_scale=(0.05, 0.14)))

    c.pretrain = dict(epochs=800, batch_size=512, optimizer="lars",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.6,
                      lr_scaling="linear", warmup_epochs=10.0, weight_decay=1e-6,
                      schedule="cosine")
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
        c.head.hidden_dims = (64,)
        c.head.sync_batch_norm = False
        c.method_kwargs.num_prototypes = 30
        c.method_kwargs.freeze_prototypes_steps = 1
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 64
        c.linear.epochs = 1
        c.linear.batch_size = 64
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
