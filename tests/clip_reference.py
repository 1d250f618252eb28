"""An independent float64 NumPy statement of CLIP's and SigLIP's losses and their gradients.

Values pair by pair with loops (Radford et al. 2021, Fig. 3's pseudocode; Zhai et al. 2023,
Alg. 1); gradients derived by hand from the same formulas: d loss / d logit_ij, then through
logit_ij = exp(t') <x_i, y_j> (+ b).
"""

import numpy as np


def clip_reference(x, y, log_scale):
    """Mean symmetric InfoNCE over the batch, float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    s, n = np.exp(log_scale), len(x)
    total = 0.0
    for i in range(n):
        row = [s * float(np.dot(x[i], y[j])) for j in range(n)]
        col = [s * float(np.dot(x[j], y[i])) for j in range(n)]
        total += 0.5 * (-row[i] + np.log(sum(np.exp(v) for v in row)))
        total += 0.5 * (-col[i] + np.log(sum(np.exp(v) for v in col)))
    return total / n


def clip_reference_grads(x, y, log_scale):
    """(d/dx, d/dy, d/dlog_scale) of `clip_reference`."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    s, n = np.exp(log_scale), len(x)
    sim = x @ y.T
    logits = s * sim
    rows = np.exp(logits - logits.max(1, keepdims=True))
    rows /= rows.sum(1, keepdims=True)
    cols = np.exp(logits - logits.max(0, keepdims=True))
    cols /= cols.sum(0, keepdims=True)
    g = (rows + cols - 2 * np.eye(n)) / (2 * n)  # d loss / d logit_ij
    return s * g @ y, s * g.T @ x, float(np.sum(g * logits))


def siglip_reference(x, y, log_scale, bias):
    """Sum over pairs of -log sigmoid(z_ij * logit_ij), divided by the batch size."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    t, n = np.exp(log_scale), len(x)
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            total += np.log1p(np.exp(-z * (t * float(np.dot(x[i], y[j])) + bias)))
    return total / n


def siglip_reference_grads(x, y, log_scale, bias):
    """(d/dx, d/dy, d/dlog_scale, d/dbias) of `siglip_reference`."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    t, n = np.exp(log_scale), len(x)
    sim = x @ y.T
    z = 2 * np.eye(n) - 1
    g = -z / (1 + np.exp(z * (t * sim + bias))) / n  # d loss / d logit_ij
    return t * g @ y, t * g.T @ x, float(np.sum(g * t * sim)), float(np.sum(g))
