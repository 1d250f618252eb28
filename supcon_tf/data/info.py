"""`DatasetInfo`: what a loader knows about its dataset, whatever the source."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Name, number of classes, image shape (H, W, C; None where sizes vary),
    examples per split and class names (index = label); for a folder also how many
    images of each (H, W) its split holds and the unreadable files it skipped."""

    name: str
    num_classes: int
    image_shape: tuple
    split_sizes: dict
    class_names: list
    image_sizes: dict = None  # {(height, width): number of images}, where known
    skipped: tuple = ()  # files dropped as corrupt (corrupt="skip")

    def __post_init__(self):
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"`class_names` must hold num_classes={self.num_classes} names; "
                f"received {len(self.class_names)}."
            )
