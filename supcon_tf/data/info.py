"""`DatasetInfo`: what a loader knows about its dataset, whatever the source."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Name, number of classes, image shape (H, W, C; None where sizes vary),
    examples per split and class names (index = label)."""

    name: str
    num_classes: int
    image_shape: tuple
    split_sizes: dict
    class_names: list

    def __post_init__(self):
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"`class_names` must hold num_classes={self.num_classes} names; "
                f"received {len(self.class_names)}."
            )
