"""The text side of image-text methods (CLIP, SigLIP): a word tokenizer and a Transformer
text encoder."""

from supcon_tf.text.encoder import POOLINGS, TextTransformer, TransformerBlock
from supcon_tf.text.tokenizer import SPECIAL_TOKENS, WordTokenizer, check_captions, words

__all__ = ["POOLINGS", "SPECIAL_TOKENS", "TextTransformer", "TransformerBlock",
           "WordTokenizer", "check_captions", "words"]
