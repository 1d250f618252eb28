"""A tiny TFDS dataset built in place (no download), registered once for every test."""

import numpy as np
import tensorflow_datasets as tfds


class SupconTinyImages(tfds.core.GeneratorBasedBuilder):
    """A 3-class 8x8 RGB dataset generated in place: no download."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 3)),
                "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(9), "test": self._generate_examples(6)}

    def _generate_examples(self, n):
        rng = np.random.default_rng(n)
        for i in range(n):
            yield i, {"image": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), "label": i % 3}


# COCO's 80 object classes, in the order of TFDS' coco/2014 ClassLabel.
COCO_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush")
# Images per split of the tiny coco_captions (Karpathy's splits, as TFDS names them).
TINY_COCO_SPLITS = {"train": 12, "restval": 4, "val": 6, "test": 6}


def tiny_coco_example(split, i):
    """Image `i` of `split`: 16x12 RGB, two boxes (the larger one's class is 0, 1 or 2
    in turn), 2 or 3 captions; the first training image has no object at all."""
    rng = np.random.default_rng([len(split), i])
    cls = i % 3
    image = rng.integers(0, 60, (16, 12, 3), dtype=np.uint8)
    image[:, :, cls] += 150  # Red people, green bicycles, blue cars.
    objects = [{"id": 2 * i, "area": 20, "bbox": tfds.features.BBox(0.1, 0.1, 0.3, 0.4),
                "label": (cls + 1) % 3, "is_crowd": False},
               {"id": 2 * i + 1, "area": 90, "bbox": tfds.features.BBox(0.2, 0.0, 0.9, 0.8),
                "label": cls, "is_crowd": False}]
    name = COCO_NAMES[cls]
    captions = [f"a photo of a {name}", f"the {name} number {i}", f"a {name} seen in {split}"]
    return {"image": image, "image/filename": f"{split}_{i}.jpg", "image/id": i,
            "objects": [] if (split, i) == ("train", 0) else objects,
            "captions": [{"id": 10 * i + k, "text": t}
                         for k, t in enumerate(captions[:2 + i % 2])]}


def prepare_tiny_coco(data_dir):
    """Writes a tiny `coco_captions` (COCO 2014 with Karpathy's splits: its name, config,
    version and features) to `data_dir`, without a download; `tfds.builder("coco_captions",
    data_dir=data_dir)` then reads it as if it were the real one."""
    from tensorflow_datasets.object_detection.coco_captions import CocoCaptions

    with tfds.core.registered.skip_registration():
        class TinyCocoCaptions(CocoCaptions):
            name = "coco_captions"

            def _split_generators(self, dl_manager):
                self.info.features["objects"]["label"].names = list(COCO_NAMES)
                return {split: self._generate_examples(split)
                        for split in TINY_COCO_SPLITS}

            def _generate_examples(self, split):  # pylint: disable=arguments-differ
                for i in range(TINY_COCO_SPLITS[split]):
                    yield f"{split}_{i}", tiny_coco_example(split, i)

    TinyCocoCaptions(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)
