"""A word-level caption tokenizer: vocabulary from captions, TensorFlow ops for `tf.data`
and for SavedModels that take strings.

Captions are lowercased and split on every run of characters other than ASCII letters,
digits and apostrophes. Each becomes `<start> words... <end>` padded with `<pad>` (id 0) to
`context_length`; unknown words map to `<unk>`. Too-long captions keep their first
`context_length - 2` words and the end token (open_clip truncates the same way).
"""

import collections
import re
import warnings

from supcon_tf.validation import check_int

SPECIAL_TOKENS = ("<pad>", "<unk>", "<start>", "<end>")
PAD, UNK, START, END = range(4)
_SPLIT = "[^a-z0-9']+"


def words(caption):
    """The words of one caption, as the TensorFlow tokenization splits it."""
    return [w for w in re.split(_SPLIT, caption.lower()) if w]


def check_captions(captions, name="captions"):
    """Raises ValueError for captions that are not non-empty strings; returns a list."""
    captions = [c.decode("utf-8") if isinstance(c, bytes) else c for c in captions]
    for i, caption in enumerate(captions):
        if not isinstance(caption, str) or not words(caption):
            raise ValueError(f"`{name}[{i}]` must be a caption with at least one word "
                             f"(letters or digits); received {caption!r}.")
    if not captions:
        raise ValueError(f"`{name}` is empty; at least one caption is needed.")
    return captions


class WordTokenizer:
    """Captions (strings) -> int32 token ids [n, context_length]; see the module docstring.

    `WordTokenizer.from_captions(captions)` builds the vocabulary (most frequent words
    first, ties alphabetical). `tokenizer(strings)` runs TensorFlow ops (in `tf.data` on
    the host, or inside an exported SavedModel); `get_config` holds the vocabulary.
    """

    def __init__(self, vocabulary, context_length=16):
        vocabulary = list(vocabulary)
        if not vocabulary or not all(isinstance(w, str) and w and words(w) == [w]
                                     for w in vocabulary):
            raise ValueError("`vocabulary` must be a non-empty list of lowercase words "
                             f"(letters, digits, apostrophes); received {vocabulary[:10]!r}.")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("`vocabulary` must not repeat a word.")
        self.vocabulary = vocabulary
        self.context_length = check_int("context_length", context_length, minimum=3)
        self._table = None

    @classmethod
    def from_captions(cls, captions, context_length=16, max_words=None):
        """A tokenizer whose vocabulary is the words of `captions` (at most `max_words`)."""
        counts = collections.Counter(w for c in check_captions(captions) for w in words(c))
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        if max_words is not None:
            ranked = ranked[:check_int("max_words", max_words, minimum=1)]
        return cls(ranked, context_length)

    @property
    def vocab_size(self):
        return len(SPECIAL_TOKENS) + len(self.vocabulary)

    @property
    def table(self):
        """The word -> id lookup table (a TensorFlow resource; export modules track it)."""
        if self._table is None:
            import tensorflow as tf

            with tf.init_scope():  # Eagerly, even when first used in a traced map.
                keys = tf.constant(self.vocabulary)
                values = tf.range(len(SPECIAL_TOKENS), self.vocab_size, dtype=tf.int64)
                self._table = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(keys, values), default_value=UNK)
        return self._table

    def __call__(self, strings):
        """int32 [n, context_length] ids of a string tensor [n] (or [] for one caption)."""
        import tensorflow as tf

        strings = tf.convert_to_tensor(strings, tf.string)
        scalar = strings.shape.rank == 0
        strings = tf.reshape(strings, [-1])
        split = tf.strings.split(tf.strings.strip(tf.strings.regex_replace(
            tf.strings.lower(strings), _SPLIT, " ")))
        ids = tf.ragged.map_flat_values(self.table.lookup, split)
        ids = ids[:, :self.context_length - 2]
        n = tf.shape(strings)[0]
        start = tf.fill([n, 1], tf.constant(START, tf.int64))
        end = tf.fill([n, 1], tf.constant(END, tf.int64))
        ids = tf.concat([start, ids, end], axis=1)
        dense = tf.cast(ids.to_tensor(PAD, shape=[None, self.context_length]), tf.int32)
        return dense[0] if scalar else dense

    def warn_if_truncated(self, captions):
        """Warns once if any caption has more words than fit, naming how many; returns the count."""
        limit = self.context_length - 2
        longer = [c for c in captions if len(words(c)) > limit]
        if longer:
            warnings.warn(
                f"{len(longer)} of {len(captions)} captions have more than {limit} words and "
                f"are truncated to context_length={self.context_length} tokens (start and end "
                f"included), e.g. {longer[0]!r}. Raise `context_length` to keep them whole.",
                stacklevel=2)
        return len(longer)

    def get_config(self):
        return {"vocabulary": list(self.vocabulary), "context_length": self.context_length}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
