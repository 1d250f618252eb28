"""An independent float64 NumPy statement of the SupCon / SimCLR losses, anchor by anchor.

Written from the papers' formulas (Khosla et al. 2020, Eq. 2 and 3; Chen et al. 2020, NT-Xent)
and the official code's option semantics, with loops rather than masks so that it shares no
structure with the package's implementation.
"""

import numpy as np


def _same_class(labels, i, j):
    if i == j:
        return True
    if labels is None:
        return False
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return labels[i] == labels[j]
    return float(np.dot(labels[i], labels[j])) > 0


def supcon_reference(features, labels=None, temperature=0.07, contrast_mode="all",
                     summation_location="outside", denominator_mode="all", positives_cap=-1,
                     scale_by_temperature=True):
    """Per-sample loss [batch] in float64."""
    f = np.asarray(features, np.float64)
    batch, num_views, _ = f.shape
    anchor_views = range(num_views) if contrast_mode == "all" else [0]
    per_view = []
    positives_count = np.zeros(batch)
    for v in anchor_views:
        row = []
        for i in range(batch):
            others = [j for j in range(batch) if j != i and _same_class(labels, i, j)]
            if positives_cap >= 0:
                others = others[: positives_cap // num_views]
            positives = [(w, j) for j in others + [i] for w in range(num_views) if (w, j) != (v, i)]
            negatives = [(w, j) for j in range(batch) for w in range(num_views)
                         if not _same_class(labels, i, j)]
            positives_count[i] = len(positives)

            def sim(w, j):
                return float(np.dot(f[i, v], f[j, w])) / temperature

            neg_sum = sum(np.exp(sim(w, j)) for w, j in negatives)
            pos_sum = sum(np.exp(sim(w, j)) for w, j in positives)
            if not positives:
                row.append(0.0)
                continue
            terms = []
            for w, j in positives:
                s = sim(w, j)
                if denominator_mode == "all":
                    z = neg_sum + pos_sum
                elif denominator_mode == "one_positive":
                    z = neg_sum + np.exp(s)
                else:
                    z = neg_sum
                terms.append((s, z))
            if summation_location == "outside":
                loss = -np.mean([s - np.log(z) for s, z in terms])
            else:
                loss = -np.log(np.mean([np.exp(s) / z for s, z in terms]))
            row.append(loss * (temperature if scale_by_temperature else 1.0))
        per_view.append(row)
    per_view = np.array(per_view)
    if num_views > 1:
        return per_view.mean(axis=0)
    # The official code divides the single-view loss once more by the positives count.
    with np.errstate(invalid="ignore", divide="ignore"):
        out = per_view[0] / positives_count
    return np.where(positives_count > 0, out, 0.0)


def nt_xent_reference(z1, z2, temperature):
    """SimCLR's NT-Xent for 2 views, written out: mean of l(2k-1, 2k) and l(2k, 2k-1)."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    n = len(z1)
    sim = z @ z.T / temperature
    losses = np.zeros(2 * n)
    for a in range(2 * n):
        p = (a + n) % (2 * n)
        denom = sum(np.exp(sim[a, k]) for k in range(2 * n) if k != a)
        losses[a] = -np.log(np.exp(sim[a, p]) / denom)
    return (losses[:n] + losses[n:]) / 2


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def loss_terms(batch, num_views, dim):
    """`terms` (tests/tolerance.py) of one contrastive loss value over `batch` x `num_views`.

    Each logit is a dot product over `dim`; each anchor's loss a log-sum-exp over the
    N = batch x num_views contrasts and a mean over its (at most N) positives; the batch
    loss a mean over the (at most N) anchors. Errors of chained reductions add:
    dim + 3 N. The gradient w.r.t. the features reduces the same sums.
    """
    return dim + 3 * batch * num_views


def loss_magnitude(expected, temperature, scale_by_temperature=True):
    """`magnitude` of a loss: its logits are O(1 / temperature), and without
    `scale_by_temperature` their rounding reaches the loss at that size."""
    return max(1.0, float(np.abs(expected).max()),
               1.0 if scale_by_temperature else 1.0 / temperature)
