"""Per-method hooks of the command line, for methods whose batches are not images alone.

`for_run(run)` gives the method's adapter, or None for the image methods. An adapter
supplies the method's extra constructor arguments, the input that builds the model, the
pretraining batches of an epoch, extra test metrics (into `metrics.json` and the
evaluation report) and extra export files; `stages.Run` calls these and nothing else.
"""

import json
import os

import numpy as np

from supcon_tf import data
from supcon_tf.cli.build import check_kwargs
from supcon_tf.cli.errors import UsageError
from supcon_tf.data import captions as cap, tfds_captions
from supcon_tf.evaluation import zero_shot
from supcon_tf.text import WordTokenizer


def _caption_settings(context_length=16, max_words=None, class_names=None,
                      train_templates=cap.TRAIN_TEMPLATES, test_templates=cap.TEST_TEMPLATES,
                      prompt_templates=cap.PROMPT_TEMPLATES, captions_file=None,
                      caption_key=None):
    """The `captions` config section: tokenizer size; the class names and templates that
    write captions from labels (training, unseen test ones) and zero-shot prompts; or a
    captions file (image,caption rows, relative to each split's folder) for folders; or
    the captions' feature of a TFDS caption dataset (e.g. "captions/text" of
    coco_captions, `data.tfds_captions`)."""
    return dict(locals())


class ImageText:
    """Method "clip": image-caption pairs, a vocabulary from the training captions,
    zero-shot and Recall@k on the test split, and the image-text SavedModel.

    The vocabulary is a function of the training captions (and class names) alone, so a
    resumed run rebuilds the same one; it is also written to `tokenizer.json`.
    """

    def __init__(self, run):
        self.run = run
        c = run.config
        if c["views"]["augment_on"] != "device":
            raise UsageError("Config key 'views.augment_on' must be 'device' for method "
                             f"{c['method']!r}: its image-caption batches are augmented by "
                             "the model (one view of `views.policy`); received "
                             f"{c['views']['augment_on']!r}.")
        settings = dict(c.get("captions") or {})
        check_kwargs("captions", _caption_settings, settings)
        self.s = _caption_settings(**settings)
        names = self.s["class_names"] or run.class_names
        if len(names) != run.num_classes:
            raise UsageError(f"Config key 'captions.class_names' must name the dataset's "
                             f"{run.num_classes} classes in order; received {len(names)}.")
        self.class_names = [str(n) for n in names]
        try:
            for key in ("train_templates", "test_templates", "prompt_templates"):
                cap.check_templates(self.s[key], name=f"captions.{key}")
            self.train = self._pairs(c["dataset"]["train_split"], self.s["train_templates"],
                                     run.train_data)
            self.test = self._pairs(c["dataset"]["test_split"], self.s["test_templates"],
                                    run.test_data)
            self.tokenizer = WordTokenizer.from_captions(
                list(self.train[1]) + self.class_names, self.s["context_length"],
                self.s["max_words"])
        except ValueError as e:
            raise UsageError(f"Config key 'captions': {e}") from e

    def _pairs(self, split, templates, split_data):
        """(images, paths, or for TFDS the index of each caption's image; captions;
        labels) of a split."""
        if self.s["captions_file"] and self.s["caption_key"]:
            raise ValueError("give `captions_file` (a folder dataset) or `caption_key` (a "
                             "TFDS caption dataset), not both.")
        if self.s["caption_key"]:
            dataset = self.run.config["dataset"]
            per_image, labels = tfds_captions.read_captions(
                self._source("tfds", "caption_key"), split, self.s["caption_key"],
                dataset["data_dir"], dataset["label_key"])
            image_of = np.repeat(np.arange(len(per_image)), [len(c) for c in per_image])
            return image_of, [c for texts in per_image for c in texts], labels[image_of]
        if self.s["captions_file"]:
            root = self._source("folder", "captions_file")
            folder = os.path.join(root, split) if os.path.isdir(os.path.join(root, split)) \
                else root
            paths, captions = cap.pairs_from_folder(folder, self.s["captions_file"])
            index = {n: i for i, n in enumerate(self.run.class_names)}
            labels = [index.get(os.path.basename(os.path.dirname(p)), -1) for p in paths]
            return np.array(paths), captions, np.array(labels, np.int64)
        images, labels = zip(*split_data.as_numpy_iterator())
        labels = np.array(labels, np.int64)
        seed = self.run.config["seed"]
        return (np.stack(images), cap.template_captions(labels, self.class_names, templates,
                                                        seed), labels)

    def _source(self, kind, key):
        """The dataset's path (folder) or TFDS name; ValueError unless it is a `kind`."""
        found, what = data.source(self.run.config["dataset"]["name"])
        if found != kind:
            sources = {"folder": "folder datasets (folder:/path)",
                       "tfds": "TFDS caption datasets (e.g. coco_captions)"}
            raise ValueError(f"`{key}` applies to {sources[kind]}; the dataset is {found!r}. "
                             "Remove it to write captions from the class names and "
                             "templates.")
        return what

    @property
    def train_size(self):
        """Pairs of the training split (an image with several captions counts each)."""
        return len(self.train[1])

    def model_kwargs(self):
        return {"tokenizer": self.tokenizer}

    def dummy_input(self):
        return {"images": np.zeros((1, *self.run.input_shape), "float32"),
                "tokens": np.zeros((1, self.tokenizer.context_length), "int32")}

    def epoch_data(self, stage):
        """`fn(epoch, seed)`: the epoch's shuffled pair batches (tokenized on the host)."""
        c = self.run.config

        def make(epoch, seed):
            del epoch
            images, captions, labels = self.train
            shuffle_buffer = max(1, min(len(captions), c["dataset"]["shuffle_buffer"]))
            if self.s["caption_key"]:  # Streamed from TFDS, images decoded after the shuffle.
                self.tokenizer.warn_if_truncated(captions)
                pairs = tfds_captions.pair_examples(
                    self._source("tfds", "caption_key"), c["dataset"]["train_split"],
                    self.s["caption_key"], c["dataset"]["data_dir"],
                    c["dataset"]["label_key"], seed=seed)
                return cap.batch_pairs(
                    pairs, self.tokenizer, c[stage]["batch_size"], shuffle_buffer, seed,
                    image_size=self.run.input_shape[:2],
                    channels=self.run.input_shape[-1], encoded=True)
            return cap.pair_dataset(
                images, captions, self.tokenizer, c[stage]["batch_size"], labels=labels,
                shuffle_buffer=shuffle_buffer, seed=seed,
                image_size=self.run.input_shape[:2], channels=self.run.input_shape[-1])

        return make

    def metrics(self, model):
        """Zero-shot top-1/5 (prompt ensemble) on the test split, and image<->text Recall@1/5
        between its images and captions (from templates training never saw, the captions
        file, or the TFDS dataset's own)."""
        batches = list(self.run.eval_data(self.run.test_data).as_numpy_iterator())
        images = np.concatenate([x for x, _ in batches])
        labels = np.concatenate([y for _, y in batches])
        result = zero_shot.zero_shot_metrics(model, images, labels, self.class_names,
                                             self.s["prompt_templates"], self.tokenizer)
        paths, captions, _ = self.test
        if self.s["caption_key"]:  # Each image once (TFDS' order); captions keyed by it.
            dataset = self.run.config["dataset"]
            height, width, channels = self.run.input_shape
            images = tfds_captions.split_images(
                self._source("tfds", "caption_key"), dataset["test_split"], (height, width),
                channels, dataset["data_dir"])
            texts, text_keys, image_keys = captions, paths, np.arange(len(images))
        elif self.s["captions_file"]:  # Each image once; each caption keyed by its image.
            paths, image_of_caption = np.unique(paths, return_inverse=True)
            images = self._decode(paths)
            texts, text_keys, image_keys = captions, image_of_caption, np.arange(len(paths))
        else:  # Template captions repeat: the texts are the distinct ones.
            texts, image_keys = np.unique(np.array(captions), return_inverse=True)
            text_keys = np.arange(len(texts))
        result.update(zero_shot.image_text_recall(
            zero_shot.embed_images(model, images), image_keys,
            zero_shot.embed_texts(model, list(texts), self.tokenizer), text_keys))
        return result

    def _decode(self, paths):
        """Float images [n, H, W, C] in [0, 1] of files, at the training size."""
        import tensorflow as tf

        height, width, channels = self.run.input_shape
        ds = tf.data.Dataset.from_tensor_slices(paths).map(
            lambda path: cap.read_image(path, (height, width), channels)).batch(256)
        return np.concatenate(list(ds.as_numpy_iterator()))

    def write(self, workdir_path):
        """Saves the vocabulary next to the checkpoints (for reading; it is rebuilt)."""
        with open(workdir_path, "w") as f:
            json.dump(self.tokenizer.get_config(), f)

    def export(self, model, folder, formats):
        """`image_text/`: the SavedModel with embed_image, embed_text and zero_shot (with
        the "saved_model" format; written from the TensorFlow or the JAX backend)."""
        from supcon_tf.export.image_text import IMAGE_TEXT_FOLDER, export_image_text

        if "saved_model" not in formats:
            return None
        return export_image_text(model, os.path.join(folder, IMAGE_TEXT_FOLDER),
                                 self.run.input_shape)


ADAPTERS = {"clip": ImageText}


def for_run(run):
    """The adapter of the run's method, or None (an image method); `UsageError` for a
    `captions` section given to a method that takes no captions."""
    cls = ADAPTERS.get(run.config["method"])
    if cls is None:
        if run.config.get("captions"):
            raise UsageError(f"Config key 'captions' applies to the image-text methods "
                             f"({', '.join(ADAPTERS)}) only, not to method "
                             f"{run.config['method']!r}; remove it.")
        return None
    return cls(run)
