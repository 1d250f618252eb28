"""The contrastive framework of Falcon & Cho (2020): a method built from five choices by name.

"A Framework For Contrastive Self-Supervised Learning And Designing A New Approach"
describes CPC, AMDIM, SimCLR (and their YADIM) by five choices; here each is a config key:

1. augmentation: the views the batches carry, or the model's `augmenter` (`views.policy`);
2. encoder: `encoder` (any functional Keras model; its feature maps by name through
   `encoders.feature_maps`);
3. representation extraction: `extraction` (a name in `methods.extractions.EXTRACTIONS`)
   with `extraction_kwargs`: which feature maps of which views are compared;
4. similarity: `similarity`, a name of `losses.distances` ("dot", "scaled_dot", "cosine");
5. loss: the method's loss, by `loss.name` in `LOSSES` ("nce": `losses.NCELoss`, with
   AMDIM's tanh clipping and score penalty, and a temperature, as options).

So AMDIM is `Framework(extraction="amdim", similarity="scaled_dot",
loss=NCELoss(tclip=20, score_penalty=5e-2))` (configs/digits_amdim.py) and a SimCLR-style
run is `extraction="global", similarity="cosine", loss=NCELoss(temperature=0.2)`.

To plug in a new choice: register an `Extraction` subclass in `EXTRACTIONS` (its
contract is in `methods.extractions`), a `losses.distances.Distance` in its `_NAMED`
table, or a loss class in `LOSSES` whose `call(None, comparison)` reads the comparison
dict below and returns per-sample losses [b]. Each step the method encodes every view
once (`extraction.encode`), the extraction returns its comparisons, and for each the
targets are gathered over the global batch (`distribute.cross_replica_concat`, so under
`tf.distribute` every replica's targets are negatives of every source) and scored:
`y_pred["comparisons"]` holds per comparison "scores" [b, S, B, T], "same" [b, B] (1
where a global sample is the local one), "positive" / "negative_within" [S, T] and
"weight"; the loss is the weighted sum of the method loss over the comparisons.
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.encoders.feature_maps import OUTPUT, available, feature_maps
from supcon_tf.losses import distances
from supcon_tf.losses.nce import NCELoss
from supcon_tf.losses.parts import serialize
from supcon_tf.methods.base import ContrastiveModel
from supcon_tf.methods.extractions import EXTRACTIONS, Extraction
from supcon_tf.registry import Registry, register

LOSSES = Registry("framework loss")
LOSSES.register("nce")(NCELoss)


def similarity_of(similarity):
    """The `losses.distances` object for `similarity`; ValueError unless larger is closer."""
    measure = distances.get(similarity, name="similarity")
    if not measure.is_similarity:
        raise ValueError(f"`similarity` must be a similarity (larger is closer: 'dot', "
                         f"'scaled_dot' or 'cosine'); received similarity={similarity!r}.")
    return measure


def score(similarity, comparison):
    """The comparison's scores [b, S, B, T] against the targets of the global batch, and
    `same` [b, B] (which global sample is each local one)."""
    source, target = comparison["source"], comparison["target"]
    targets, offset = distribute.cross_replica_concat(target)
    local, total = ops.shape(source)[0], ops.shape(targets)[0]
    sources, count = ops.shape(source)[1], ops.shape(target)[1]
    dim = target.shape[-1]  # (The gather loses the static shape.)
    scores = similarity.similarity(ops.reshape(source, (-1, dim)),
                                   ops.reshape(targets, (-1, dim)))
    scores = ops.reshape(scores, (local, sources, total, count))
    same = ops.one_hot(ops.arange(local) + offset, total, dtype=scores.dtype)
    return scores, same


@register
class Framework(ContrastiveModel):
    """A contrastive method from its extraction, similarity and loss by name (see the
    module docstring); the augmentation and encoder are the usual arguments.

    `model(views)` returns the "representation" [b, V, r] (the encoder's output), the
    "comparisons" and, for the finite-loss guard, "projection" (their scores);
    `model(images)` the representation [b, r], as for every method.
    """

    default_loss = NCELoss

    @classmethod
    def resolve_loss(cls, kwargs):
        """(loss class, its kwargs) from a config's `loss` section by its `name`."""
        kwargs = dict(kwargs)
        return LOSSES.lookup(kwargs.pop("name", "nce")), kwargs

    @classmethod
    def views_needed(cls, method_kwargs):
        """The views its extraction needs (CPC: one; AMDIM: two)."""
        factory = EXTRACTIONS.lookup(method_kwargs.get("extraction", "amdim"))
        return getattr(factory, "min_views", Extraction.min_views)

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None,
                 extraction="amdim", extraction_kwargs=None, similarity="dot", **kwargs):
        super().__init__(encoder, head=head, loss=loss, augmenter=augmenter, probe=probe,
                         **kwargs)
        self.extraction_name = extraction
        self.extraction_kwargs = dict(extraction_kwargs or {})
        self.similarity_name = serialize(similarity)
        self.similarity = similarity_of(similarity)
        self.extraction = EXTRACTIONS.get(extraction, head=self.head, **self.extraction_kwargs)
        self.min_views = self.extraction.min_views
        valid = available(encoder) if isinstance(encoder, keras.Model) else []
        for name in self.extraction.map_names:
            if name not in valid:
                raise ValueError(
                    f"`extraction_kwargs` of extraction {extraction!r} compares feature map "
                    f"{name!r}, which encoder {encoder.name!r} does not have. Valid "
                    f"feature-map names: {', '.join(repr(v) for v in valid[:40])}.")
        names = sorted({OUTPUT, *self.extraction.map_names})
        # Shares the encoder's layers; kept out of Keras' tracking (the weights are the
        # encoder's, saved once under it).
        object.__setattr__(self, "_features", feature_maps(encoder, names))

    def build(self, input_shape):
        super().build(input_shape)
        shapes = {k: tuple(t.shape) for k, t in self._features.output.items()}
        if not self.extraction.built:
            self.extraction.build(shapes)

    def call(self, inputs, training=False):
        groups = self.input_views(inputs, training)
        if groups is None:
            return self.encoder(inputs, training=training)
        if len(groups) != 1:
            raise ValueError("`inputs` must be one view tensor [b, V, H, W, C] for "
                             "Framework; view groups of several sizes (multi-crop) are not "
                             f"supported; received {len(groups)} groups.")
        views = groups[0]
        num_views = views.shape[1]
        flat = ops.reshape(ops.moveaxis(views, 1, 0), (-1, *views.shape[2:]))  # View-major.
        maps = self.extraction.encode(self._features, flat, training=training)
        per_view = [dict(zip(maps, parts)) for parts in
                    zip(*(ops.split(m, num_views, axis=0) for m in maps.values()))]
        comparisons = []
        for c in self.extraction(per_view, training=training):
            scores, same = score(self.similarity, c)
            out = dict(scores=scores, same=same, positive=ops.convert_to_tensor(c["positive"]),
                       weight=ops.convert_to_tensor(float(c.get("weight", 1.0))))
            if c.get("negative_within") is not None:
                out["negative_within"] = ops.convert_to_tensor(c["negative_within"])
            comparisons.append(out)
        outputs = {
            "representation": ops.stack([m[OUTPUT] for m in per_view], axis=1),
            "comparisons": comparisons,
            "projection": [c["scores"] for c in comparisons],
        }
        if self.probe is not None:
            outputs["probe_logits"] = self.probe(outputs["representation"])
        return outputs

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        """The weighted sum of the method loss over the comparisons."""
        losses = [ops.cast(c["weight"], "float32") * self.method_loss(None, c, sample_weight)
                  for c in y_pred["comparisons"]]
        return ops.sum(ops.stack(losses))

    def get_config(self):
        config = super().get_config()
        config.update(extraction=self.extraction_name,
                      extraction_kwargs=dict(self.extraction_kwargs),
                      similarity=self.similarity_name)
        return config
