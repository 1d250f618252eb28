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
    if distance == "cosine":
        return 1.0 - _cos(a, b)
    return float(np.sum((a - b) ** 2))


def _split(labels, i):
    pos = [j for j in range(len(labels)) if j != i and labels[j] == labels[i]]
    neg = [j for j in range(len(labels)) if labels[j] != labels[i]]
    return pos, neg


def _softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def triplet_reference(x, labels, margin=0.2, mining="batch_hard", distance="cosine",
                      soft_margin=False, average="pairs"):
    """Per-anchor values; semi-hard with average="pairs" scales them so that their mean
    is TF-Addons' mean over all (anchor, positive) pairs."""
    x = np.asarray(x, np.float64)
    out, pair_sums = [], []
    for i in range(len(x)):
        pos, neg = _split(labels, i)
        if not pos or not neg:
            out.append(0.0)
            continue
        d = {j: _distance(x[i], x[j], distance) for j in range(len(x))}

        def hinge(v):
            return _softplus(v) if soft_margin else max(v + margin, 0.0)

        if mining == "batch_hard":
            out.append(hinge(max(d[p] for p in pos) - min(d[n] for n in neg)))
            continue
        losses = []
        for p in pos:
            farther = [d[n] for n in neg if d[n] > d[p]]
            chosen = min(farther) if farther else max(d[n] for n in neg)
            losses.append(hinge(d[p] - chosen))
        out.append(sum(losses) / len(losses))
        pair_sums.append((i, sum(losses)))
    if mining == "semi_hard" and average == "pairs":
        total_pairs = sum(len(_split(labels, i)[0]) for i in range(len(x)))
        for i, pair_sum in pair_sums:
            out[i] = pair_sum * len(x) / total_pairs
    return np.array(out)


def multi_similarity_reference(x, labels, alpha=2.0, beta=50.0, base=0.5, epsilon=0.1):
    x = np.asarray(x, np.float64)
    out = []
    for i in range(len(x)):
        pos, neg = _split(labels, i)
        s = {j: _cos(x[i], x[j]) for j in range(len(x))}
        if not pos or not neg:
            out.append(0.0)
            continue
        kept_neg = [n for n in neg if s[n] + epsilon > min(s[p] for p in pos)]
        kept_pos = [p for p in pos if s[p] - epsilon < max(s[n] for n in neg)]
        if not kept_neg or not kept_pos:
            out.append(0.0)
            continue
        pos_term = math.log(1 + sum(math.exp(-alpha * (s[p] - base)) for p in kept_pos))
        neg_term = math.log(1 + sum(math.exp(beta * (s[n] - base)) for n in kept_neg))
        out.append(pos_term / alpha + neg_term / beta)
    return np.array(out)


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
