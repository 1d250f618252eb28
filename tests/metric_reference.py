"""Independent float64 NumPy statements of the metric-learning losses, anchor by anchor.

Written from the papers (Hermans et al. 2017; Schroff et al. 2015 as TF-Addons'
`triplet_semihard_loss`; Wang et al. 2019, Eq. 10-12; Sun et al. 2020, Eq. 6 and 8;
Kim et al. 2020, Eq. 4) with loops over pairs, sharing no code with the package.
"""

import math

import numpy as np


def _cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _distance(a, b, distance):
    """Smaller is closer: the dissimilarity the triplet loss and the miners use."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if distance == "cosine":
        return 1.0 - _cos(a, b)
    if distance == "dot":
        return -float(np.dot(a, b))
    if distance == "scaled_dot":
        return -float(np.dot(a, b)) / math.sqrt(len(a))
    if distance.endswith("_unit"):
        a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
        distance = distance[:-len("_unit")]
    squared = float(np.sum((a - b) ** 2))
    return squared if distance == "squared_l2" else math.sqrt(squared)


def _split(labels, i):
    pos = [j for j in range(len(labels)) if j != i and labels[j] == labels[i]]
    neg = [j for j in range(len(labels)) if labels[j] != labels[i]]
    return pos, neg


def _softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def mine_triplets(d, labels, mining):
    """The (anchor, positive, negative) triplets a miner keeps, from dissimilarities d."""
    out = []
    for i in range(len(labels)):
        pos, neg = _split(labels, i)
        if not pos or not neg:
            continue
        if mining in ("batch_hard", "batch_easy_hard"):
            # Ties: the lowest index (as argmax / argmin).
            if mining == "batch_hard":
                p = max(pos, key=lambda j: (d[i][j], -j))
            else:
                p = min(pos, key=lambda j: (d[i][j], j))
            n = min(neg, key=lambda j: (d[i][j], j))
            out.append((i, p, n))
        elif mining == "semi_hard":
            for p in pos:
                farther = [n for n in neg if d[i][n] > d[i][p]]
                n = (min(farther, key=lambda j: (d[i][j], j)) if farther
                     else max(neg, key=lambda j: (d[i][j], -j)))
                out.append((i, p, n))
        elif mining == "all":
            out.extend((i, p, n) for p in pos for n in neg)
        else:
            raise ValueError(mining)
    return out


def reduce_reference(terms, labels, reducer):
    """terms: {anchor: [values]} -> each anchor's share [batch] of the reduced loss.

    `reducer`: a name, or {"name": "divisor", "divisor": D} / {"name":
    "class_weighted", "weights": [...]}. The loss is the sum of the shares."""
    options = dict(reducer) if isinstance(reducer, dict) else {"name": reducer}
    kind = options["name"]
    n = len(labels)
    values = [v for i in terms for v in terms[i]]
    share = np.zeros(n)
    for i, t in terms.items():
        if kind == "mean":
            share[i] = sum(t) / len(values)
        elif kind == "non_zero":
            share[i] = sum(t) / len([v for v in values if v > 0]) if sum(t) else 0.0
        elif kind == "per_anchor":
            share[i] = sum(t) / len(t) / n
        elif kind == "divisor":
            share[i] = sum(t) / options["divisor"]
        elif kind == "class_weighted":
            share[i] = options["weights"][labels[i]] * sum(t) / len(values)
        else:
            raise ValueError(kind)
    return share


def triplet_reference(x, labels, margin=0.2, mining="batch_hard", distance="cosine",
                      soft_margin=False, average="pairs", reducer=None):
    """Per-anchor values whose mean is the reduced loss (the package's contract).

    Default reducer: per anchor for batch-hard / batch-easy-hard or average="anchors",
    else the mean over the triplets (TF-Addons' mean over the (anchor, positive) pairs)."""
    x = np.asarray(x, np.float64)
    d = [[_distance(x[i], x[j], distance) for j in range(len(x))] for i in range(len(x))]
    if reducer is None:
        reducer = ("per_anchor" if mining in ("batch_hard", "batch_easy_hard")
                   or average == "anchors" else "mean")

    def hinge(v):
        return _softplus(v) if soft_margin else max(v + margin, 0.0)

    terms = {}
    for i, p, n in mine_triplets(d, labels, mining):
        terms.setdefault(i, []).append(hinge(d[i][p] - d[i][n]))
    return len(x) * reduce_reference(terms, labels, reducer)


def multi_similarity_reference(x, labels, alpha=2.0, beta=50.0, base=0.5, epsilon=0.1,
                               distance="cosine", miner=None, reducer=None):
    """`miner`: None (the loss's own mining, Eq. 10-11) or a triplet miner's name, whose
    triplets give the kept pairs; `reducer`: None (per-anchor values as they are) or
    one of `reduce_reference`'s, over one term per anchor."""
    x = np.asarray(x, np.float64)
    d = [[_distance(x[i], x[j], distance) for j in range(len(x))] for i in range(len(x))]
    triplets = mine_triplets(d, labels, miner) if miner is not None else None
    out = []
    for i in range(len(x)):
        pos, neg = _split(labels, i)
        s = {j: -d[i][j] + (1.0 if distance == "cosine" else 0.0) for j in range(len(x))}
        if not pos or not neg:
            out.append(0.0)
            continue
        if triplets is None:
            kept_neg = [n for n in neg if s[n] + epsilon > min(s[p] for p in pos)]
            kept_pos = [p for p in pos if s[p] - epsilon < max(s[n] for n in neg)]
        else:
            kept_pos = sorted({p for a, p, _ in triplets if a == i})
            kept_neg = sorted({n for a, _, n in triplets if a == i})
        if not kept_neg or not kept_pos:
            out.append(0.0)
            continue
        pos_term = math.log(1 + sum(math.exp(-alpha * (s[p] - base)) for p in kept_pos))
        neg_term = math.log(1 + sum(math.exp(beta * (s[n] - base)) for n in kept_neg))
        out.append(pos_term / alpha + neg_term / beta)
    if reducer is None:
        return np.array(out)
    return len(x) * reduce_reference({i: [v] for i, v in enumerate(out)}, labels, reducer)


def multi_similarity_pairs_reference(x, labels, epsilon=0.1):
    """The (positive, negative) pair masks of Wang et al.'s Eq. 10-11 on cosine."""
    x = np.asarray(x, np.float64)
    n = len(x)
    positive, negative = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        pos, neg = _split(labels, i)
        s = {j: _cos(x[i], x[j]) for j in range(n)}
        for k in neg:
            if pos and s[k] + epsilon > min(s[p] for p in pos):
                negative[i, k] = 1
        for p in pos:
            if neg and s[p] - epsilon < max(s[k] for k in neg):
                positive[i, p] = 1
    return positive, negative


def distance_weights_reference(x, labels, cutoff=0.5, nonzero_loss_cutoff=1.4):
    """Wu et al. 2017's probabilities [n, n] of drawing each negative for each anchor."""
    x = np.asarray(x, np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n, dim = x.shape
    out = np.zeros((n, n))
    for i in range(n):
        _, neg = _split(labels, i)
        weights = {}
        for k in neg:
            dist = float(np.linalg.norm(x[i] - x[k]))
            if dist < nonzero_loss_cutoff:
                dc = max(dist, cutoff)
                q = dc ** (dim - 2) * (1 - dc * dc / 4) ** ((dim - 3) / 2)
                weights[k] = 1.0 / q
        if not weights:  # None could give a loss: uniform over the negatives.
            weights = {k: 1.0 for k in neg}
        total = sum(weights.values())
        for k, w in weights.items():
            out[i, k] = w / total
    return out


def circle_reference(x, labels, gamma=80.0, margin=0.4, alpha_from=None):
    """`alpha_from`: the embeddings the weights alpha are computed from (default `x`).

    The official code treats alpha as a constant (detached): finite differences of the
    loss with alpha fixed at the point give the gradient it defines.
    """
    x = np.asarray(x, np.float64)
    a = x if alpha_from is None else np.asarray(alpha_from, np.float64)
    out = []
    for i in range(len(x)):
        pos, neg = _split(labels, i)
        if not pos or not neg:
            out.append(0.0)
            continue
        s = {j: _cos(x[i], x[j]) for j in range(len(x))}
        w = {j: _cos(a[i], a[j]) for j in range(len(x))}
        # Eq. 6 with O_p = 1 + m, O_n = -m, Delta_p = 1 - m, Delta_n = m.
        sum_n = sum(math.exp(gamma * max(w[n] + margin, 0) * (s[n] - margin)) for n in neg)
        sum_p = sum(math.exp(-gamma * max(1 + margin - w[p], 0) * (s[p] - 1 + margin))
                    for p in pos)
        out.append(math.log(1 + sum_n * sum_p))
    return np.array(out)


def proxy_anchor_reference(x, labels, proxies, alpha=32.0, delta=0.1):
    x, proxies = np.asarray(x, np.float64), np.asarray(proxies, np.float64)
    with_positives = [c for c in range(len(proxies)) if c in set(int(v) for v in labels)]
    positive = sum(math.log(1 + sum(math.exp(-alpha * (_cos(x[i], proxies[c]) - delta))
                                    for i in range(len(x)) if labels[i] == c))
                   for c in with_positives)
    negative = sum(math.log(1 + sum(math.exp(alpha * (_cos(x[i], proxies[c]) + delta))
                                    for i in range(len(x)) if labels[i] != c))
                   for c in range(len(proxies)))
    return positive / len(with_positives) + negative / len(proxies)


def numeric_gradient(f, x, step=1e-6):
    """Central finite differences of the scalar f at x (float64)."""
    x = np.array(x, np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        grad[index] = (f(up) - f(down)) / (2 * step)
    return grad
