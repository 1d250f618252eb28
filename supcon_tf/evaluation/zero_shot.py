"""Image-text evaluation of a CLIP / SigLIP model: zero-shot classification from class-name
prompts and image<->text Recall@k.

Zero-shot (Radford et al. 2021, Sec. 3.1.4): each class's embedding is the mean of the
normalized embeddings of its prompts (one per template), normalized again; an image's class
is the one whose embedding is most similar. Recall@k pairs each image with its own
captions (`retrieval_metrics` with keys as labels).
"""

import numpy as np
from keras import ops

from supcon_tf.data.captions import check_templates
from supcon_tf.evaluation.retrieval import retrieval_metrics


def _batches(n, batch_size):
    return [(s, min(n, s + batch_size)) for s in range(0, n, batch_size)]


def embed_images(model, images, batch_size=256):
    """L2-normalized image embeddings [n, p] of float images [n, H, W, C] in [0, 1]."""
    out = [ops.convert_to_numpy(model.encode_images(images[a:b])[1])
           for a, b in _batches(len(images), batch_size)]
    return np.concatenate(out).astype(np.float32)


def embed_texts(model, captions, tokenizer=None, batch_size=256):
    """L2-normalized text embeddings [n, p] of `captions` (strings)."""
    tokenizer = tokenizer or model.tokenizer
    if tokenizer is None:
        raise ValueError("`tokenizer` must be given: the model holds none.")
    out = [ops.convert_to_numpy(model.encode_text(tokenizer(list(captions[a:b])).numpy()))
           for a, b in _batches(len(captions), batch_size)]
    return np.concatenate(out).astype(np.float32)


def class_embeddings(model, class_names, templates, tokenizer=None):
    """[num_classes, p]: per class, the normalized mean of its prompts' embeddings."""
    templates = check_templates(templates)
    prompts = [t.format(name) for name in class_names for t in templates]
    emb = embed_texts(model, prompts, tokenizer).reshape(len(class_names), len(templates), -1)
    mean = emb.mean(axis=1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def zero_shot_metrics(model, images, labels, class_names, templates, tokenizer=None,
                      batch_size=256):
    """{"zero_shot_top1", "zero_shot_top5" (with 5+ classes), "num_templates"}."""
    logits = embed_images(model, images, batch_size) @ class_embeddings(
        model, class_names, templates, tokenizer).T
    labels = np.asarray(labels)
    ranked = np.argsort(-logits, axis=1)
    result = {"zero_shot_top1": float(np.mean(ranked[:, 0] == labels)),
              "num_templates": len(templates)}
    if len(class_names) >= 5:
        result["zero_shot_top5"] = float(np.mean(np.any(ranked[:, :5] == labels[:, None], 1)))
    return result


def image_text_recall(image_emb, image_keys, text_emb, text_keys, ks=(1, 5)):
    """{"image_to_text_recall@k", "text_to_image_recall@k"}: an image and a caption match
    when their keys are equal (the image's index and each of its captions' image index; or,
    where captions repeat, the caption's id), and a query hits if a match is in its top k."""
    i2t = retrieval_metrics(image_emb, image_keys, text_emb, text_keys, ks=ks)
    t2i = retrieval_metrics(text_emb, text_keys, image_emb, image_keys, ks=ks)
    result = {f"image_to_text_recall@{k}": i2t[f"recall@{k}"] for k in ks}
    result.update({f"text_to_image_recall@{k}": t2i[f"recall@{k}"] for k in ks})
    return result
