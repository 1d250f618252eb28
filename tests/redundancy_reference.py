"""Independent float64 NumPy statements of Barlow Twins' and VICReg's losses, with loops,
each as its paper writes it and as its released code computes it (two views z_a, z_b
[N, D] of the global batch).

Barlow Twins (Zbontar et al. 2021), Eq. 1 and 2: C_ij = sum_b a_bi b_bj /
(sqrt(sum_b a_bi^2) sqrt(sum_b b_bj^2)) of the outputs mean-centred along the batch,
L = sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2. The code (facebookresearch/
barlowtwins main.py): c = bn(z1).T @ bn(z2) / N, bn = BatchNorm1d(affine=False) in
training mode (biased variance, eps 1e-5).
VICReg (Bardes et al. 2022), Eq. 1-6: v(Z) = 1/d sum_j max(0, gamma - sqrt(Var(z^j) +
eps)), c(Z) = 1/d sum_{i != j} C(Z)_ij^2 with C(Z) = 1/(n-1) sum_i (z_i - mean)(z_i -
mean)^T, s(Z, Z') = 1/n sum_i ||z_i - z'_i||^2, l = lambda s + mu [v(Z) + v(Z')] + nu
[c(Z) + c(Z')]. The code (facebookresearch/vicreg main_vicreg.py): sim_coeff x
F.mse_loss (a mean over dimensions too) + std_coeff x (mean relu(1 - std_x) / 2 + the
same of y) + cov_coeff x cov_loss.
"""

import math

import numpy as np


def _columns(z):
    z = np.asarray(z, np.float64)
    return z, z.shape[0], z.shape[1]


def barlow_twins_paper(z_a, z_b, lambd=0.0051):
    a, n, d = _columns(z_a)
    b, _, _ = _columns(z_b)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[k, i] * b[k, j] for k in range(n)) / (
                math.sqrt(sum(a[k, i] ** 2 for k in range(n)))
                * math.sqrt(sum(b[k, j] ** 2 for k in range(n))))
            loss += (1.0 - c) ** 2 if i == j else lambd * c ** 2
    return loss


def barlow_twins_code(z_a, z_b, lambd=0.0051, epsilon=1e-5, scale_loss=1.0):
    def bn(z):
        z, n, _ = _columns(z)
        mean = z.sum(axis=0) / n
        var = ((z - mean) ** 2).sum(axis=0) / n  # BatchNorm normalizes with the biased variance.
        return (z - mean) / np.sqrt(var + epsilon)

    n = np.asarray(z_a).shape[0]
    c = bn(z_a).T @ bn(z_b) / n
    on_diag = sum((c[i, i] - 1.0) ** 2 for i in range(c.shape[0]))
    off_diag = sum(c[i, j] ** 2 for i in range(c.shape[0]) for j in range(c.shape[1]) if i != j)
    return scale_loss * (on_diag + lambd * off_diag)


def _variance_hinge(z, epsilon, gamma=1.0):
    z, n, d = _columns(z)
    total = 0.0
    for j in range(d):
        var = sum((z[k, j] - z[:, j].mean()) ** 2 for k in range(n)) / (n - 1)
        total += max(0.0, gamma - math.sqrt(var + epsilon))
    return total / d


def _covariance_penalty(z):
    z, n, d = _columns(z)
    centred = z - z.mean(axis=0)
    cov = sum(np.outer(centred[k], centred[k]) for k in range(n)) / (n - 1)
    return sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / d


def vicreg_paper(z_a, z_b, lam=25.0, mu=25.0, nu=1.0, epsilon=1e-4):
    a, n, _ = _columns(z_a)
    b, _, _ = _columns(z_b)
    s = sum(float(np.sum((a[k] - b[k]) ** 2)) for k in range(n)) / n
    v = _variance_hinge(a, epsilon) + _variance_hinge(b, epsilon)
    c = _covariance_penalty(a) + _covariance_penalty(b)
    return lam * s + mu * v + nu * c


def vicreg_code(z_a, z_b, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0, epsilon=1e-4):
    a, _, _ = _columns(z_a)
    b, _, _ = _columns(z_b)
    repr_loss = float(np.mean((a - b) ** 2))
    std_loss = _variance_hinge(a, epsilon) / 2 + _variance_hinge(b, epsilon) / 2
    cov_loss = _covariance_penalty(a) + _covariance_penalty(b)
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


def over_view_pairs(fn, embeddings, **kwargs):
    """The mean of fn over the pairs of views i < j of embeddings [N, V, D]."""
    z = np.asarray(embeddings, np.float64)
    pairs = [(i, j) for i in range(z.shape[1]) for j in range(i + 1, z.shape[1])]
    return sum(fn(z[:, i], z[:, j], **kwargs) for i, j in pairs) / len(pairs)
