"""Representation extractions of the contrastive framework: which feature maps of which
views are compared (Falcon & Cho 2020, "A Framework For Contrastive Self-Supervised
Learning And Designing A New Approach", the third of its five choices).

An extraction is a Keras layer registered by name in `EXTRACTIONS`; `methods.Framework`
builds it from `extraction=` / `extraction_kwargs=` and the method's `head` (a template:
the extraction may clone it, e.g. one embedding per feature map). Its parts:

- `map_names`: the encoder feature maps it reads (names of `encoders.feature_maps`);
  "output" (the pooled representation) is always computed as well;
- `min_views`: the views per sample it needs;
- `encode(features, images, training)`: the maps {name: tensor} of a batch of images of
  one view, `features` being the encoder's feature-map model (override it to encode
  patches, as CPC does; the default runs it on the images);
- `call(maps, training)`: `maps` is a list (one per view) of {name: [b, ...]} dicts;
  returns a list of comparisons, each a dict with
    "source" [b, S, d]: S vectors of each local sample that predict,
    "target" [b, T, d]: T vectors of each sample to be predicted (gathered over the
      global batch by the method: every other sample's targets are negatives),
    "positive" [S, T]: which of a sample's own targets are each source's positives,
    "negative_within" [S, T] (optional): own targets that are negatives too,
    "weight": the comparison's weight in the loss (a float).
The similarity (`losses.distances`) scores sources against targets and the loss
(`losses.NCELoss`) turns the scores into the objective; see `methods.framework`.

Registered here: "amdim" (global vs local features across views at several scales,
Bachman et al. 2019) and "global" (the pooled outputs of two views, SimCLR-style).
"""

import copy

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.registry import Registry, register
from supcon_tf.validation import check_choice

EXTRACTIONS = Registry("extraction")
SOURCE_LOCATIONS = ("random", "all")


def clone_layer(layer):
    """A new, unbuilt layer of `layer`'s class and config (its own weights)."""
    return layer.__class__.from_config(copy.deepcopy(layer.get_config()))


def global_rows(local_batch):
    """(global batch size, offset of this replica's first sample in it)."""
    gathered, offset = distribute.cross_replica_concat(ops.zeros((local_batch, 1)))
    return ops.shape(gathered)[0], offset


def locations(x):
    """A feature map [b, H, W, C] (or a vector [b, C]) as its locations [b, H*W, C]."""
    if len(x.shape) == 2:
        return ops.expand_dims(x, 1)
    return ops.reshape(x, (ops.shape(x)[0], -1, x.shape[-1]))


class Extraction(keras.layers.Layer):
    """Base of the extractions (see the module docstring); `head` is the method's."""

    min_views = 2

    def __init__(self, head=None, **kwargs):
        super().__init__(**kwargs)
        self.template = head

    def get_config(self):
        return dict(super().get_config(),
                    head=keras.saving.serialize_keras_object(self.template))

    @classmethod
    def from_config(cls, config):
        config = dict(config, head=keras.saving.deserialize_keras_object(config.get("head")))
        return cls(**config)

    @property
    def map_names(self):
        raise NotImplementedError

    def encode(self, features, images, training=False):
        return features(images, training=training)


@register
class MultiScale(Extraction):
    """AMDIM's extraction: a feature of one view predicts the locations of another
    view's feature map, at several scales (Bachman et al., NeurIPS 2019, Sec. 3.3).

    `maps` names the scales: {alias: encoder feature-map name}, the aliases being words
    (config keys), e.g. AMDIM's {"r1": "output", "r5": "stage3", "r7": "stage2"} (its
    code's names of the 1x1, 5x5 and 7x7 maps at 128 px). `comparisons` are "a-b"
    strings: the feature of scale `a` of view v (the vector itself for a 1x1 map; one
    location drawn uniformly per sample, as the released code does, or every location
    with `source_location="all"`) against all locations of scale `b` of view w, for
    every ordered pair of views v != w; AMDIM's 1-5, 1-7 and 5-5 are "r1-r5", "r1-r7"
    and "r5-r5". Each scale is embedded to `head`'s output by its own copy of `head`
    (scale "output" by `head` itself), applied at every location. A comparison's pairs
    of views share its weight 1, so comparisons add up, as in AMDIM's loss.
    """

    def __init__(self, maps=None, comparisons=("r1-r5", "r1-r7", "r5-r5"),
                 source_location="random", head=None, seed=None, **kwargs):
        super().__init__(head=head, **kwargs)
        maps = dict(maps or {"r1": "output"})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in maps.items()):
            raise ValueError(f"`maps` must map scale aliases to feature-map names (strings); "
                             f"received maps={maps!r}.")
        if isinstance(comparisons, str) or not comparisons:
            raise ValueError(f"`comparisons` must be a non-empty list of 'a-b' strings; "
                             f"received comparisons={comparisons!r}.")
        pairs = []
        for c in comparisons:
            parts = c.split("-") if isinstance(c, str) else []
            if len(parts) != 2 or not all(p in maps for p in parts):
                raise ValueError(
                    f"`comparisons` holds {c!r}; each must be 'a-b' with a and b scales of "
                    f"`maps` ({', '.join(repr(k) for k in maps)}).")
            pairs.append(tuple(parts))
        self.maps, self.comparisons = maps, [str(c) for c in comparisons]
        self.pairs = pairs
        self.source_location = check_choice("source_location", source_location,
                                             SOURCE_LOCATIONS)
        used = sorted({a for pair in pairs for a in pair})
        if head is None:
            raise ValueError("`head` (the embedding of each scale) is required.")
        self.heads = {a: head if maps[a] == "output" else clone_layer(head) for a in used}
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_config(self):
        config = super().get_config()
        config.update(maps=dict(self.maps), comparisons=list(self.comparisons),
                      source_location=self.source_location, seed=self.seed)
        return config

    # Keras saves a layer's weights but not its seed generator's state: saved here, so
    # that a restored model draws the same source locations next (`model.variables`,
    # which the command line's checkpoints hold, has it already).
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["draws"] = ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        if "draws" in store.keys():
            self.seed_generator.state.assign(store["draws"])
        super().load_own_variables({k: store[k] for k in store.keys() if k != "draws"})

    @property
    def map_names(self):
        return sorted({self.maps[a] for pair in self.pairs for a in pair})

    def build(self, map_shapes):
        """`map_shapes`: {feature-map name: shape}."""
        for alias, head in self.heads.items():
            if not head.built:
                head.build((None, map_shapes[self.maps[alias]][-1]))
        self.built = True

    def _embed(self, alias, x, training):
        rows = locations(x)
        b, count = ops.shape(rows)[0], ops.shape(rows)[1]
        out = self.heads[alias](ops.reshape(rows, (-1, rows.shape[-1])), training=training)
        return ops.reshape(out, (b, count, out.shape[-1]))

    def _sources(self, embedded):
        """One location per sample ("random"; drawn for the global batch, so that every
        replica split draws the same) or all of them."""
        count = embedded.shape[1]
        if self.source_location == "all" or count == 1:
            return embedded
        local = ops.shape(embedded)[0]
        total, offset = global_rows(local)
        if count is None:
            count = ops.shape(embedded)[1]
        drawn = keras.random.randint((total,), 0, count, seed=self.seed_generator)
        picked = ops.one_hot(ops.slice(drawn, (offset,), (local,)), count,
                             dtype=embedded.dtype)
        return ops.sum(embedded * ops.expand_dims(picked, -1), axis=1, keepdims=True)

    def call(self, maps, training=False):
        embedded = [{a: self._embed(a, view[self.maps[a]], training) for a in self.heads}
                    for view in maps]
        ordered = [(v, w) for v in range(len(maps)) for w in range(len(maps)) if v != w]
        comparisons = []
        for a, b in self.pairs:
            for v, w in ordered:
                source = self._sources(embedded[v][a])
                target = embedded[w][b]
                shape = (source.shape[1] or ops.shape(source)[1],
                         target.shape[1] or ops.shape(target)[1])
                comparisons.append(dict(source=source, target=target,
                                        positive=ops.ones(shape, source.dtype),
                                        weight=1.0 / len(ordered)))
        return comparisons


EXTRACTIONS.register("amdim")(MultiScale)


@EXTRACTIONS.register("global")
def global_extraction(head=None, seed=None, **kwargs):
    """SimCLR-style: each view's pooled output (embedded by `head`) predicts the other
    views' (InfoNCE across views, other samples' views as negatives)."""
    return MultiScale(maps={"r1": "output"}, comparisons=("r1-r1",), head=head, seed=seed,
                      **kwargs)

