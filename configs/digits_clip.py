r"""CLIP on the bundled handwritten digits with template captions: the image-text demo.

  supcon-tf --config=configs/digits_clip.py --workdir=/tmp/digits_clip
  supcon-tf --config=configs/digits_clip.py:local --workdir=/tmp/smoke   # seconds

The setting of CLIP (Radford et al., ICML 2021): an image tower and a Transformer text
tower, each with a linear projection to a shared L2-normalized embedding, trained with the
symmetric InfoNCE over the batch with a learnable temperature (initialized to 1/0.07,
clipped at 100). Scaled down to scikit-learn's 1,797 8x8 digits (offline, 2 CPU cores):
a small CNN, a 2-layer text Transformer, Adam. Each training image gets one caption written
from `captions.train_templates` ("a handwritten seven", ...); the test captions come from
templates training never saw. Evaluation: zero-shot top-1 (class prompts averaged over
`captions.prompt_templates`), image<->text Recall@1/5 on the test digits, and the linear
probe on the image tower, into metrics.json and eval/report.md; export/image_text/ holds
the SavedModel with embed_image, embed_text and zero_shot.
"""

import ml_collections

from supcon_tf.data.captions import DIGIT_NAMES


def get_config(arg=None, loss="clip"):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    c = ml_collections.ConfigDict()
    c.method = "clip"
    c.seed = 0
    c.precision = "float32"
    c.deterministic = False
    c.steps_per_execution = 1
    c.checkpoint_every_steps = 0
    c.keep_checkpoints = 2

    c.dataset = dict(name="digits", data_dir=None, train_split="train", test_split="test",
                     shuffle_buffer=2048)
    # Captions: the class names the templates fill in, and the tokenizer's context.
    c.captions = dict(class_names=DIGIT_NAMES, context_length=12)
    c.encoder = dict(name="small_cnn",
                     kwargs=dict(widths=(32, 64, 128), dim=128, sync_batch_norm=False))
    c.head = dict(hidden_dims=(), output_dim=64, use_batch_norm=False, sync_batch_norm=False)
    c.method_kwargs = dict(text_encoder=dict(width=64, num_layers=2, num_heads=4))
    c.loss = dict(name=loss)
    # One view per image, augmented on the device (CLIP trains on random crops).
    c.views = dict(policy="digits", num_views=1, augment_on="device", image_size=None,
                   kwargs={})

    c.pretrain = dict(epochs=30, batch_size=128, optimizer="adam", optimizer_kwargs={},
                      learning_rate=1e-3, lr_scaling="none", warmup_epochs=1.0,
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
        c.encoder.kwargs.widths = (8, 16)
        c.encoder.kwargs.dim = 16
        c.head.output_dim = 16
        c.method_kwargs.text_encoder = dict(width=16, num_layers=1, num_heads=2)
    elif arg is not None:
        raise ValueError(f"Unknown config argument {arg!r}; valid: 'local' or none.")
    return c
