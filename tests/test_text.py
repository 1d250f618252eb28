"""The caption tokenizer (vocabulary, ids, truncation, tf.data) and the text Transformer."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from supcon_tf.text import TextTransformer, WordTokenizer
from tolerance import assert_close

CAPTIONS = ["a handwritten seven", "the digit 7, written by hand", "A seven!"]


def test_vocabulary_from_captions_and_ids():
    tokenizer = WordTokenizer.from_captions(CAPTIONS, context_length=6)
    # Most frequent first, ties alphabetical; ids start after <pad> <unk> <start> <end>.
    assert tokenizer.vocabulary == ["a", "seven", "7", "by", "digit", "hand", "handwritten",
                                    "the", "written"]
    assert tokenizer.vocab_size == 13
    ids = tokenizer(["A Seven", "zebra seven"]).numpy()
    np.testing.assert_array_equal(ids, [[2, 4, 5, 3, 0, 0], [2, 1, 5, 3, 0, 0]])
    np.testing.assert_array_equal(tokenizer("seven").numpy(), [2, 5, 3, 0, 0, 0])
    restored = WordTokenizer.from_config(tokenizer.get_config())
    np.testing.assert_array_equal(restored(CAPTIONS).numpy(), tokenizer(CAPTIONS).numpy())


def test_long_captions_are_truncated_with_one_warning():
    tokenizer = WordTokenizer.from_captions(CAPTIONS, context_length=5)
    long = ["the digit 7 written by hand", "a handwritten seven by hand"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert tokenizer.warn_if_truncated(long + ["a seven"]) == 2
    assert len(caught) == 1 and "context_length=5" in str(caught[0].message)
    # The first context_length - 2 words, then the end token.
    np.testing.assert_array_equal(tokenizer(long[:1]).numpy(), [[2, 11, 8, 6, 3]])


def test_tokenizes_inside_tf_data():
    tokenizer = WordTokenizer.from_captions(CAPTIONS, context_length=6)
    dataset = tf.data.Dataset.from_tensor_slices(CAPTIONS).batch(2).map(tokenizer)
    got = np.concatenate([b.numpy() for b in dataset])
    np.testing.assert_array_equal(got, tokenizer(CAPTIONS).numpy())


@pytest.mark.parametrize("bad,match", [(["", "a seven"], r"captions\[0\]"),
                                       (["a seven", " ,. "], r"captions\[1\]"), ([], "empty")])
def test_empty_captions_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        WordTokenizer.from_captions(bad)


def test_bad_vocabulary_and_context_are_refused():
    with pytest.raises(ValueError, match="vocabulary"):
        WordTokenizer(["two words"])
    with pytest.raises(ValueError, match="context_length"):
        WordTokenizer(["a"], context_length=2)


@pytest.mark.parametrize("pooling", ["end", "mean"])
def test_text_encoder_ignores_padding_and_pools(pooling):
    keras.utils.set_random_seed(0)
    encoder = TextTransformer(12, context_length=6, width=8, num_layers=2, num_heads=2,
                              pooling=pooling)
    tokens = np.array([[2, 5, 6, 3, 0, 0], [2, 7, 3, 0, 0, 0]], "int32")
    out = ops.convert_to_numpy(encoder(tokens))
    assert out.shape == (2, 8) and np.all(np.isfinite(out))
    assert np.abs(out[0] - out[1]).max() > 1e-3  # Different captions, different features.
    # The same caption in a longer context: padding is never attended to.
    longer = TextTransformer.from_config({**encoder.get_config(), "context_length": 8})
    longer.build((None, 8))
    weights = encoder.get_weights()
    position = next(i for i, w in enumerate(encoder.weights) if "position" in w.path)
    weights[position] = np.concatenate([weights[position], np.zeros((2, 8), "float32")])
    longer.set_weights(weights)
    padded = np.pad(tokens, ((0, 0), (0, 2)))
    assert_close(ops.convert_to_numpy(longer(padded)), out, terms=8 * 6, magnitude=4.0)


def test_tokens_of_another_context_length_are_refused():
    encoder = TextTransformer(12, context_length=5, width=8, num_layers=1, num_heads=2)
    with pytest.raises(ValueError, match="context_length=5"):
        encoder(np.zeros((1, 6), "int32"))
