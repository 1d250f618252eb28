r"""NNCLR on CIFAR-10 with a ResNet-18 (CIFAR stem).

  supcon-tf --config=configs/cifar10_nnclr.py --workdir=gs://BUCKET/cifar10_nnclr \
      --strategy=tpu --tpu=ADDRESS
  supcon-tf --config=configs/cifar10_nnclr.py:local --workdir=/tmp/smoke   # tiny model

NNCLR (Dwibedi et al., ICCV 2021) at CIFAR scale. The paper reports ImageNet only;
these are the CIFAR-10 settings of solo-learn's NNCLR recipe (da Costa et al., JMLR
2022, scripts/pretrain/cifar/nnclr.yaml), the common reference: ResNet-18 with a 3x3
stem, batch 256, LARS with learning rate 0.4 (x batch/256), weight decay 1e-5, 10
warmup epochs then cosine over 1000 epochs, projector 2048-2048-256 with BatchNorm on
every layer, predictor 4096-256, a support set of 65,536 projections, temperature 0.2
(the paper's ImageNet setting is 0.1). Stage 2: a linear classifier on the frozen
representation. Needs the TFDS `cifar10` data.
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's run, "local" for a tiny smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "nnclr"
    c.method_kwargs = dict(queue_size=65536, predictor_hidden_dims=(4096,))
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
    c.head = dict(hidden_dims=(2048, 2048), output_dim=256, use_batch_norm=True,
                  sync_batch_norm=True, output_batch_norm=True, normalize=False)
    c.loss = dict(temperature=0.2)
    c.views = dict(policy="cifar", num_views=2, augment_on="host", image_size=None,
                   kwargs=dict(strength=0.5))

    c.pretrain = dict(epochs=1000, batch_size=256, optimizer="lars",
                      optimizer_kwargs=dict(momentum=0.9), learning_rate=0.4,
                      lr_scaling="linear", warmup_epochs=10.0, weight_decay=1e-5,
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
        c.head.sync_batch_norm = False
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 64
        c.head.hidden_dims = (64, 64)
        c.head.output_dim = 32
        c.method_kwargs.predictor_hidden_dims = (64,)
        c.linear.epochs = 1
        c.linear.batch_size = 64
        c.eval.knn_every_epochs = 0
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
