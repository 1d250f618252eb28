r"""CLIP / SigLIP on the bundled digits with template captions, from the Python API.

  python tools/clip_digits.py --loss=clip --epochs=30
  python tools/clip_digits.py --loss=siglip --epochs=30
  python tools/clip_digits.py --loss=clip --epochs=2 --local   # seconds

Trains the two towers on the training digits with captions from `TRAIN_TEMPLATES`, then
prints zero-shot top-1 on the test digits (class prompts averaged over
`PROMPT_TEMPLATES`), image->text and text->image Recall@1 and @5 between the test images
and the 30 distinct test captions, written from templates training never saw
(`TEST_TEMPLATES`; a template's words that training never saw read as unknown), and the top-1 of a linear
probe (`LinearClassifier` on the frozen image tower) as JSON.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from supcon_tf import encoders, methods  # noqa: E402
from supcon_tf.data import captions as cap  # noqa: E402
from supcon_tf.evaluation import zero_shot  # noqa: E402
from supcon_tf.heads import ProjectionHead  # noqa: E402
from supcon_tf.text import WordTokenizer  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", choices=sorted(methods.clip.LOSSES), default="clip")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--local", action="store_true", help="tiny towers (smoke run)")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    train_images, train_captions, train_labels = cap.digits_pairs("train")
    test_images, test_captions, test_labels = cap.digits_pairs("test")
    # The vocabulary covers the training captions and the class names of the prompts.
    tokenizer = WordTokenizer.from_captions(list(train_captions) + list(cap.DIGIT_NAMES), 12)
    widths, dim, width = ((8, 16), 16, 16) if args.local else ((32, 64, 128), 128, 64)
    model = methods.CLIP(
        encoders.get("small_cnn", input_shape=(8, 8, 1), widths=widths, dim=dim),
        ProjectionHead(hidden_dims=(), output_dim=64), tokenizer=tokenizer, loss=args.loss,
        text_encoder=dict(width=width, num_layers=2, num_heads=4))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    train = cap.pair_dataset(train_images, train_captions, tokenizer, args.batch_size,
                             labels=train_labels, shuffle_buffer=2048)
    history = model.fit(train, epochs=args.epochs, verbose=0)
    x_train = train_images.astype("float32") / 255
    x_test = test_images.astype("float32") / 255
    result = {"loss": args.loss, "epochs": args.epochs,
              "final_train_loss": float(history.history["loss"][-1]),
              "logit_scale": float(np.exp(keras.ops.convert_to_numpy(
                  model.logit_scale.log_scale))),
              "logit_bias": float(keras.ops.convert_to_numpy(model.logit_scale.bias))}
    result.update(zero_shot.zero_shot_metrics(model, x_test, test_labels, cap.DIGIT_NAMES,
                                              cap.PROMPT_TEMPLATES))
    # Template captions repeat: the texts are the distinct test captions, and an image
    # matches the one it was paired with.
    texts, keys = np.unique(np.array(test_captions), return_inverse=True)
    result.update(zero_shot.image_text_recall(
        zero_shot.embed_images(model, x_test), keys, zero_shot.embed_texts(model, texts),
        np.arange(len(texts))))
    probe = methods.LinearClassifier(model.encoder, num_classes=10)
    probe.compile(optimizer=keras.optimizers.Adam(5e-2), loss="auto")
    probe.fit(x_train, train_labels, batch_size=256, epochs=5 if args.local else 30, verbose=0)
    logits = keras.ops.convert_to_numpy(probe.predict(x_test, verbose=0))
    result["linear_probe_top1"] = float(np.mean(np.argmax(logits, 1) == test_labels))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
