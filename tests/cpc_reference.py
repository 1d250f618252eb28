"""An independent float64 NumPy statement of CPC's InfoNCE over a patch grid, and its gradient.

van den Oord et al. 2018, Eq. 4; Hénaff et al. 2020, Eq. 3: the prediction p = W_k c_{i,j}
of sample n scores every patch z_{m,u,v} of the batch by a dot product; the loss is the
cross-entropy of picking its own target z_{n,i+k,j}. Per sample: for each step k the mean
over its (rows - k) x cols predictions, summed over k. Written with loops over the
predictions; the gradient is derived by hand: d loss / d logit = (softmax - onehot) / M_k.
"""

import numpy as np


def cpc_reference(predictions, targets):
    """Per-sample loss [b]; predictions: K arrays [b, rows - k, cols, d]; targets [b, R, C, d]."""
    z = np.asarray(targets, np.float64)
    b, rows, cols, _ = z.shape
    everything = z.reshape(-1, z.shape[-1])  # Every patch of the batch, (m, u, v) row-major.
    loss = np.zeros(b)
    for k, p in enumerate(predictions, 1):
        p = np.asarray(p, np.float64)
        for n in range(b):
            for i in range(rows - k):
                for j in range(cols):
                    logits = everything @ p[n, i, j]
                    own = (n * rows + i + k) * cols + j
                    high = logits.max()
                    lse = high + np.log(np.sum(np.exp(logits - high)))
                    loss[n] += (lse - logits[own]) / ((rows - k) * cols)
    return loss


def cpc_reference_grads(predictions, targets, weights):
    """(d/dpredictions [K arrays], d/dtargets) of sum(weights * cpc_reference(...))."""
    z = np.asarray(targets, np.float64)
    b, rows, cols, d = z.shape
    everything = z.reshape(-1, d)
    grad_z = np.zeros_like(everything)
    grads_p = []
    for k, p in enumerate(predictions, 1):
        p = np.asarray(p, np.float64)
        flat = p.reshape(-1, d)  # (n, i, j) row-major
        logits = flat @ everything.T
        soft = np.exp(logits - logits.max(1, keepdims=True))
        soft /= soft.sum(1, keepdims=True)
        n, i, j = np.meshgrid(np.arange(b), np.arange(rows - k), np.arange(cols), indexing="ij")
        own = ((n * rows + i + k) * cols + j).reshape(-1)
        soft[np.arange(len(own)), own] -= 1.0
        g = soft * (np.repeat(np.asarray(weights, np.float64), (rows - k) * cols)
                    / ((rows - k) * cols))[:, None]  # d total / d logit
        grads_p.append((g @ everything).reshape(p.shape))
        grad_z += g.T @ flat
    return grads_p, grad_z.reshape(z.shape)
