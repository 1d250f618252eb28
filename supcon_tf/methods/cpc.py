"""CPC v2's representation extraction (Hénaff et al., ICML 2020), a setting of the framework.

With the "patches" encoder (`encoders.patch_encoder`: the image cut into a grid of
overlapping patches, each augmented on its own and encoded), the extraction "cpc"
reads the grid of patch features z [b, rows, cols, d] (feature map "patch_grid"), runs
the masked, autoregressive context network over it (`heads.ContextNetwork`: row i
sees rows <= i), and predicts linearly, W_k c_{i,j}, the target of the patch k rows
below, for k = 1..`steps`. Targets are the method's head on z (a linear map in the
configs; the identity is CPC v2's own choice). Each step is one comparison of the
framework: S = (rows - k) * cols predictions of a sample against the rows * cols
patches of every sample of the global batch, its own patch k rows below the positive
and every other patch (of its image too) a negative; with the "dot" similarity and the
"nce" loss that is CPC's InfoNCE (van den Oord et al. 2018, Eq. 4).
"""

import keras
import numpy as np
from keras import layers, ops

from supcon_tf.encoders.patches import GRID
from supcon_tf.heads import ContextNetwork
from supcon_tf.methods.extractions import EXTRACTIONS, Extraction
from supcon_tf.registry import register
from supcon_tf.validation import check_choice, check_int

# Where the context comes from: "down" (rows above predict the rows below, CPC v1), "up",
# "right" (columns to the left predict those to the right) and "left"; CPC v2 predicts in
# several directions, each with its own context network and predictions.
DIRECTIONS = ("down", "up", "right", "left")


def orient(grid, direction):
    """The grid [b, rows, cols, d] turned so that `direction` runs down its rows."""
    if direction in ("right", "left"):
        grid = ops.transpose(grid, (0, 2, 1, 3))
    return ops.flip(grid, axis=1) if direction in ("up", "left") else grid


def step_positives(rows, cols, k):
    """[S, T] 0/1: prediction (i, j) of step k (i < rows - k, row-major) against patch
    (u, v) of its own image; 1 at (u, v) = (i + k, j)."""
    source = np.arange((rows - k) * cols)
    positive = np.zeros(((rows - k) * cols, rows * cols), "float32")
    positive[source, source + k * cols] = 1.0
    return positive


@EXTRACTIONS.register("cpc")
@register
class PatchPrediction(Extraction):
    """CPC's extraction (see the module docstring).

    Args:
      grid: the feature map of patch features [b, rows, cols, d] ("patch_grid" of the
        "patches" encoder).
      steps: K, the rows ahead predicted (k = 1..K; fewer than the grid's rows).
      directions: which ways to predict (`DIRECTIONS`), each with its own context network
        and predictions; their losses add up, as the steps' do.
      context: the `ContextNetwork` or a dict of its arguments (width, num_blocks, ...),
        the first direction's; the others' are copies of its configuration.
      head: the method's head, the targets' map (applied at every patch).

    Every view of a sample is a grid of its own (CPC needs one view; views are averaged).
    """

    min_views = 1

    def __init__(self, grid=GRID, steps=2, directions=("down",), context=None, head=None,
                 **kwargs):
        super().__init__(head=head, **kwargs)
        if head is None:
            raise ValueError("`head` (the map of patch features to targets) is required.")
        self.grid = str(grid)
        self.steps = check_int("steps", steps, minimum=1)
        if isinstance(context, dict) and "class_name" in context:
            context = keras.saving.deserialize_keras_object(context)
        elif isinstance(context, dict) or context is None:
            context = ContextNetwork(name="context", **dict(context or {}))
        if isinstance(directions, str) or not directions:
            raise ValueError(f"`directions` must be a non-empty list of {DIRECTIONS}; "
                             f"received directions={directions!r}.")
        self.directions = [check_choice("directions", d, DIRECTIONS) for d in directions]
        if len(set(self.directions)) != len(self.directions):
            raise ValueError(f"`directions` must not repeat a direction; received "
                             f"directions={directions!r}.")
        self.contexts = [context] + [ContextNetwork.from_config(
            {**context.get_config(), "name": f"context_{d}"}) for d in self.directions[1:]]
        self.predictors = []  # Per direction, K maps W_k.

    @property
    def map_names(self):
        return [self.grid]

    def build(self, map_shapes):
        """`map_shapes`: {feature-map name: shape}; the grid's rows bound `steps`."""
        shape = tuple(map_shapes[self.grid])
        if len(shape) != 4:
            raise ValueError(f"Feature map {self.grid!r} must be a grid of patch features "
                             f"[b, rows, cols, d] (the 'patches' encoder's); received shape "
                             f"{shape}.")
        for direction in self.directions:
            side = shape[2] if direction in ("right", "left") else shape[1]
            if side is not None and self.steps >= side:
                raise ValueError(f"`steps` must be smaller than the grid's {side} rows "
                                 f"(columns, predicting {direction!r}): a step k predicts "
                                 f"row i + k; received steps={self.steps}.")
        grid = (None, None, None, shape[-1])
        if not self.template.built:
            self.template.build((None, shape[-1]))
        target_dim = self.template.compute_output_shape((None, shape[-1]))[-1]
        for context in self.contexts:
            if not context.built:
                context.build(grid)
        if not self.predictors:
            for direction, context in zip(self.directions, self.contexts):
                for k in range(1, self.steps + 1):
                    predictor = layers.Dense(target_dim, use_bias=False,
                                             name=f"predict_{direction}{k}")
                    predictor.build((None, None, None, context.width))
                    self.predictors.append(predictor)
        self.built = True

    def predict(self, features, training=False):
        """Per direction: (targets [b, rows, cols, t] turned to run down the rows, and the
        predictions, K tensors [b, rows - k, cols, t])."""
        _, rows, cols, dim = features.shape
        flat = self.template(ops.reshape(features, (-1, dim)), training=training)
        targets = ops.reshape(flat, (-1, rows, cols, flat.shape[-1]))
        out = []
        for i, direction in enumerate(self.directions):
            contexts = self.contexts[i](orient(features, direction))
            rows = contexts.shape[1]
            maps = self.predictors[i * self.steps:(i + 1) * self.steps]
            out.append((orient(targets, direction),
                        [w(contexts[:, :rows - k]) for k, w in enumerate(maps, 1)]))
        return out

    def call(self, maps, training=False):
        comparisons = []
        weight = 1.0 / len(maps)
        for view in maps:
            for targets, predictions in self.predict(view[self.grid], training):
                comparisons.extend(step_comparisons(targets, predictions, weight))
        return comparisons

    def get_config(self):
        config = super().get_config()
        config.update(grid=self.grid, steps=self.steps, directions=list(self.directions),
                      context=keras.saving.serialize_keras_object(self.contexts[0]))
        return config


def step_comparisons(targets, predictions, weight=1.0):
    """The framework's comparisons of CPC, one per step: sources are the step's
    predictions [b, (rows - k) * cols, t], targets every patch [b, rows * cols, t]."""
    _, rows, cols, dim = targets.shape
    flat_targets = ops.reshape(targets, (-1, rows * cols, dim))
    comparisons = []
    for k, prediction in enumerate(predictions, 1):
        positive = step_positives(rows, cols, k)
        comparisons.append(dict(
            source=ops.reshape(prediction, (-1, (rows - k) * cols, dim)),
            target=flat_targets, positive=positive, negative_within=1.0 - positive,
            weight=weight))
    return comparisons
