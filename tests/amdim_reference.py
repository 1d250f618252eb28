"""A float64 NumPy statement of AMDIM's clipped NCE (Bachman et al., NeurIPS 2019), value
and gradient, written from the released code's `costs.py` (`NCE_MI_MULTI._model_scores`)
and the paper, independently of `supcon_tf.losses.nce`.

One comparison: sources u [b, d] (one vector per sample, e.g. view 1's global feature)
against targets v [b, L, d] (view 2's local features). With scale = 1/sqrt(d) (the
released code) or 1 (the paper):
    raw[i, j, l] = scale * u_i . v_jl
    c = tclip * tanh(raw / tclip)
    nce[i, l] = c[i, i, l] - log(exp(c[i, i, l]) + sum_{j != i, l'} exp(c[i, j, l']))
    loss = -mean_{i, l} nce[i, l] + penalty * mean_{i, j, l} raw[i, j, l]^2
"""

import numpy as np


def _scores(u, v, scale, tclip):
    raw = scale * np.einsum("id,jld->ijl", u, v)
    return raw, tclip * np.tanh(raw / tclip)


def amdim_loss(u, v, *, scale, tclip=20.0, penalty=0.0):
    """The comparison's loss, a float."""
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    b, length = v.shape[:2]
    raw, c = _scores(u, v, scale, tclip)
    total = 0.0
    for i in range(b):
        negatives = sum(np.exp(c[i, j, m]) for j in range(b) if j != i for m in range(length))
        for l in range(length):
            total += c[i, i, l] - np.log(np.exp(c[i, i, l]) + negatives)
    return -total / (b * length) + penalty * float(np.mean(raw ** 2))


def amdim_grads(u, v, *, scale, tclip=20.0, penalty=0.0):
    """(d loss / d u, d loss / d v) by hand."""
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    b, length = v.shape[:2]
    raw, c = _scores(u, v, scale, tclip)
    g = np.zeros_like(c)  # d loss / d c
    for i in range(b):
        negatives = sum(np.exp(c[i, j, m]) for j in range(b) if j != i for m in range(length))
        denominators = np.exp(c[i, i]) + negatives  # [L]
        for l in range(length):
            g[i, i, l] -= (1.0 - np.exp(c[i, i, l]) / denominators[l]) / (b * length)
        for j in range(b):
            if j != i:
                g[i, j] += np.exp(c[i, j]) * np.sum(1.0 / denominators) / (b * length)
    g_raw = g * (1.0 - (c / tclip) ** 2) + penalty * 2.0 * raw / raw.size
    return scale * np.einsum("ijl,jld->id", g_raw, v), scale * np.einsum("ijl,id->jld", g_raw, u)
