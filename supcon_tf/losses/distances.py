"""Distances as objects, as pytorch-metric-learning's `distances`: what "close" means.

Each distance gives a pairwise matrix [len(a), len(b)] of the rows of `a` and `b`
(`pairwise`), and says whether larger is closer (`is_similarity`). Losses and miners
read it through two views: `dissimilarity` (smaller is closer; a similarity s gives
1 - s for cosine, -s for the dot product) for the triplet margin, and `similarity`
(larger is closer; a distance d gives -d) for the pair losses.

* `CosineSimilarity()`: cosine of the rows (the package's default everywhere);
* `L2Distance(normalize=False, squared=False)`: the Euclidean distance of the rows
  as given, or of the unit rows with `normalize=True` (pytorch-metric-learning's
  default `LpDistance`); `squared=True` drops the square root;
* `DotProductSimilarity()`: the inner product of the rows as given;
* `ScaledDotProductSimilarity()`: the inner product divided by sqrt(dim), AMDIM's
  released code's score (and a Transformer's attention logit).

`get(x)` accepts an object, its `serialize` dict, or a name of `DISTANCES`:
"cosine", "l2", "squared_l2" (both on the rows as given), "l2_unit",
"squared_l2_unit" (on unit rows), "dot", "scaled_dot".
"""

from keras import ops

from supcon_tf.losses.parts import Part, resolve
from supcon_tf.registry import register


class Distance(Part):
    """Base: `pairwise(a, b)`, `is_similarity`, and the two views losses use."""

    is_similarity = False

    def pairwise(self, a, b):
        raise NotImplementedError

    def dissimilarity(self, a, b):
        """[len(a), len(b)], smaller is closer."""
        return self.pairwise(a, b) if not self.is_similarity else -self.pairwise(a, b)

    def similarity(self, a, b):
        """[len(a), len(b)], larger is closer."""
        return self.pairwise(a, b) if self.is_similarity else -self.pairwise(a, b)


@register
class CosineSimilarity(Distance):
    """Cosine similarity of the rows; as a dissimilarity, the cosine distance 1 - s."""

    is_similarity = True

    def pairwise(self, a, b):
        return ops.matmul(ops.normalize(a, axis=-1), ops.transpose(ops.normalize(b, axis=-1)))

    def dissimilarity(self, a, b):
        return 1.0 - self.pairwise(a, b)


@register
class DotProductSimilarity(Distance):
    """Inner product of the rows as given (no normalization)."""

    is_similarity = True

    def pairwise(self, a, b):
        return ops.matmul(a, ops.transpose(b))


@register
class ScaledDotProductSimilarity(Distance):
    """Inner product of the rows divided by the square root of their dimension."""

    is_similarity = True

    def pairwise(self, a, b):
        return ops.matmul(a, ops.transpose(b)) / ops.sqrt(ops.cast(ops.shape(a)[-1], a.dtype))


@register
class L2Distance(Distance):
    """Euclidean distance (`squared=True`: its square) of the rows, or of the unit rows."""

    def __init__(self, normalize=False, squared=False):
        self.normalize = bool(normalize)
        self.squared = bool(squared)

    def pairwise(self, a, b):
        if self.normalize:
            a, b = ops.normalize(a, axis=-1), ops.normalize(b, axis=-1)
        squared = ops.maximum(
            ops.sum(ops.square(a), axis=1, keepdims=True)
            + ops.expand_dims(ops.sum(ops.square(b), axis=1), 0)
            - 2.0 * ops.matmul(a, ops.transpose(b)), 0.0)
        if self.squared:
            return squared
        # sqrt has an infinite derivative at 0 (a row against itself): the gradient
        # of an exactly-zero distance is taken as 0, as pytorch-metric-learning does.
        zero = ops.equal(squared, 0.0)
        return ops.where(zero, 0.0, ops.sqrt(ops.where(zero, 1.0, squared)))

    def get_config(self):
        return {"normalize": self.normalize, "squared": self.squared}


_NAMED = {
    "cosine": CosineSimilarity,
    "l2": lambda: L2Distance(),
    "squared_l2": lambda: L2Distance(squared=True),
    "l2_unit": lambda: L2Distance(normalize=True),
    "squared_l2_unit": lambda: L2Distance(normalize=True, squared=True),
    "dot": DotProductSimilarity,
    "scaled_dot": ScaledDotProductSimilarity,
}
DISTANCES = tuple(_NAMED)


def get(distance, name="distance"):
    """A `Distance` from an object, its `serialize` dict or a name of `DISTANCES`."""
    return resolve(distance, Distance, _NAMED, name)


def require_similarity(distance, loss):
    """The `Distance` for a loss defined on similarities (cosine or dot product)."""
    distance = get(distance)
    if not distance.is_similarity:
        raise ValueError(f"`distance` of {loss} must be a similarity (larger is closer: "
                         f"'cosine' or 'dot'); received distance={distance!r}.")
    return distance
