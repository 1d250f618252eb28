r"""CLIP on COCO Captions with a ResNet-50: the paper's setting on a caption dataset.

  supcon-tf --config=configs/coco_clip.py --workdir=/data/runs/coco_clip --strategy=mirrored \
      --config.dataset.data_dir=/data/tfds
  supcon-tf --config=configs/coco_clip.py:local --workdir=/tmp/smoke \
      --config.dataset.data_dir=/data/tfds   # tiny towers

Not trained here on COCO (no COCO on this machine, no network): written for a user who has
the data. Its :local variant has been run end-to-end through the command line against a
tiny coco_captions prepared in a temporary data_dir (tests/test_tfds_captions.py), which
proves the config runs, not what it reaches on COCO.
Follows Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision" (ICML 2021), Sec. 2.4-2.5 and Appendix F, for its ResNet-50 row: the image
tower a ResNet-50 (the paper's adds an attention pooling, this package's pools by average),
a 12-layer, 512-wide, 8-head text Transformer that takes the end-of-text token, linear
projections to a 1024-d shared embedding, the symmetric InfoNCE over the global batch with a
learnable temperature initialized to 0.07 (logit scale 1/0.07, clipped at 100), Adam (beta_2
0.999, epsilon 1e-8 for the ResNets) with decoupled weight decay 0.2, learning rate 5e-4
with cosine decay after warmup, random square crops as the only augmentation (area 0.5-1
here), context 76 tokens. The paper trains 32 epochs over 400M pairs at batch 32,768; COCO
holds 118k images with 5 captions each, so this keeps the hyperparameters and uses the batch
one accelerator host holds (1024). The vocabulary here is words from the training captions
(49,152 at most, the size of the paper's byte-pair vocabulary), not byte pairs.

Data: TFDS `coco_captions` (COCO 2014 with Karpathy and Li's splits), prepared once with
`tfds build coco_captions --data_dir=DIR` (or --config.dataset.download=True) and read from
`dataset.data_dir`. Training pairs are every caption of "train+restval" (113k images, the
usual Karpathy training set; each caption is a pair), `captions.caption_key` naming the
captions' feature. The test split is Karpathy's 5k "test", with COCO's own captions, so
image<->text Recall@k is the paper's COCO retrieval setting. The command line's linear probe
and zero-shot prompts need classes: `dataset.label_key="objects/label"` gives each image the
COCO class (of 80) of its largest box; the ~1% of images without a box are left out of the
probe and zero-shot (they stay in the pairs and the retrieval).
"""

import ml_collections


def get_config(arg=None):
    """`arg`: None for the paper's setting, "local" for a tiny smoke run on the same data."""
    c = ml_collections.ConfigDict()
    c.method = "clip"
    c.seed = 0
    c.precision = "mixed_bfloat16"
    c.deterministic = False
    c.steps_per_execution = 50
    c.checkpoint_every_steps = 1000
    c.keep_checkpoints = 2

    c.dataset = dict(name="coco_captions", data_dir=None, label_key="objects/label",
                     train_split="train+restval", test_split="test", shuffle_buffer=10_000)
    c.captions = dict(caption_key="captions/text", context_length=76, max_words=49_152,
                      prompt_templates=("a photo of a {}.", "a photo of the {}.",
                                        "a picture of a {}.", "an image of a {}."))
    c.encoder = dict(name="resnet50", kwargs=dict(stem="imagenet", sync_batch_norm=True))
    c.head = dict(hidden_dims=(), output_dim=1024, use_batch_norm=False,
                  sync_batch_norm=False)
    c.method_kwargs = dict(text_encoder=dict(width=512, num_layers=12, num_heads=8))
    c.loss = dict(name="clip", scale_init=1 / 0.07, max_scale=100.0)
    # Random crops only (no colour distortion, blur or flip): the paper's augmentation.
    c.views = dict(policy="simclr", num_views=1, augment_on="device", image_size=(224, 224),
                   kwargs=dict(area_range=(0.5, 1.0), aspect_range=(1.0, 1.0), flip=False,
                               jitter_p=0.0, grayscale_p=0.0, blur=False, blur_p=0.0))

    c.pretrain = dict(epochs=32, batch_size=1024, optimizer="adamw",
                      optimizer_kwargs=dict(beta_1=0.9, beta_2=0.999, epsilon=1e-8),
                      learning_rate=5e-4, lr_scaling="none", warmup_epochs=2.0,
                      weight_decay=0.2, schedule="cosine")
    c.linear = dict(epochs=30, batch_size=1024, optimizer="sgd",
                    optimizer_kwargs=dict(momentum=0.9), learning_rate=0.1,
                    lr_scaling="none", warmup_epochs=0.0, weight_decay=0.0,
                    schedule="cosine", augmentation="eval")
    c.eval = dict(knn_every_epochs=0, knn_k=200, knn_temperature=0.1,
                  online_probe=False, plots=True, plot_samples=2000)
    c.export = dict(enabled=True, keras_file=True, formats=("saved_model",))

    if arg == "local":
        c.precision = "float32"
        c.steps_per_execution = 1
        c.pretrain.epochs = 1
        c.pretrain.batch_size = 32
        c.linear.epochs = 1
        c.linear.batch_size = 32
        c.encoder = dict(name="small_cnn", kwargs=dict(widths=(8, 16), dim=16))
        c.views.image_size = (64, 64)
        c.head.output_dim = 16
        c.method_kwargs.text_encoder = dict(width=16, num_layers=1, num_heads=2)
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
