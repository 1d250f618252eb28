"""Independent float64 NumPy statements of SimSiam's, SwAV's and DINO's losses, with loops.

SimSiam (Chen & He 2021, Algorithm 1): L = D(p1, z2) / 2 + D(p2, z1) / 2 with
D(p, z) = -<p / |p|, z / |z|>; with V views, the mean over ordered pairs i != j.
SwAV (Caron et al. 2020, Sec. 3.1 and the official `distributed_sinkhorn`): Q =
exp(scores / eps) as a K x B matrix divided by its sum, then per iteration: each
row (prototype) divided by its sum and by K, each column (sample) by its sum and
by B; finally times B. The loss of sample b: the mean over global crops i of the
mean over crops v != i of -sum_k q_i[b, k] log softmax(scores_v[b] / t)[k].
NNCLR (Dwibedi et al. 2021, Eq. 1 and Algorithm 1): NN(z) = the support row of
largest cosine with z; L_i = -log exp(nn_i . p_i / t) / sum_k exp(nn_i . p_k / t),
nn = NN(z_a) and p = p_b normalized, k over the batch, averaged over the view pairs
(a, b), a != b (the paper's L(NN1, p2) / 2 + L(NN2, p1) / 2).
DINO (Caron et al. 2021, Algorithm 1 and the official `DINOLoss`): for each teacher
(global) view i and student view v != i, H(P_t, P_s) = -sum_k P_t[k] log P_s[k] with
P_t = softmax((t_i - c) / tau_t) and P_s = softmax(s_v / tau_s); a sample's loss is
the mean over those pairs. The center's update: c <- m c + (1 - m) mean(t).
InstDisc (Wu et al. 2018, Eqs. 5-7, and the released `NCEAverage` / `NCECriterion`):
P(i|f) = exp(v_i . f / T) / Z; with m noise rows and P_n = 1 / n,
J = -log(P_pos / (P_pos + m P_n)) - sum_k log(m P_n / (P_k + m P_n)) + lambda |f - v_i|^2;
Z given, or per sample (n / m) sum_k exp(v_k . f / T); the gradient by hand, Z fixed.
"""

import math

import numpy as np


def simsiam_reference(projections, predictions):
    z = np.asarray(projections, np.float64)
    p = np.asarray(predictions, np.float64)
    batch, views, _ = z.shape
    out = np.zeros(batch)
    for b in range(batch):
        pairs = 0
        for i in range(views):
            for j in range(views):
                if i == j:
                    continue
                cos = np.dot(p[b, i], z[b, j]) / (np.linalg.norm(p[b, i]) *
                                                   np.linalg.norm(z[b, j]))
                out[b] -= cos
                pairs += 1
        out[b] /= pairs
    return out


def sinkhorn_reference(scores, epsilon=0.05, iterations=3):
    """Codes [B, K] in float64, the official K x B statement transposed at the end."""
    s = np.asarray(scores, np.float64)
    batch, k = s.shape
    q = np.array([[math.exp(s[b, j] / epsilon) for b in range(batch)] for j in range(k)])
    q /= q.sum()
    for _ in range(iterations):
        for j in range(k):
            q[j, :] /= q[j, :].sum()
        q /= k
        for b in range(batch):
            q[:, b] /= q[:, b].sum()
        q /= batch
    return (q * batch).T


def swav_reference(scores, temperature=0.1, epsilon=0.05, iterations=3, assign_views=2,
                   queue_scores=None):
    """`queue_scores` [assign_views, Q, K]: the queue's samples join each Sinkhorn-Knopp
    before the batch's (the official code's `torch.cat((queue @ prototypes, out))`)."""
    s = np.asarray(scores, np.float64)
    batch, views, _ = s.shape
    out = np.zeros(batch)
    for i in range(assign_views):
        if queue_scores is None:
            q = sinkhorn_reference(s[:, i], epsilon, iterations)
        else:
            stacked = np.concatenate([np.asarray(queue_scores[i], np.float64), s[:, i]])
            q = sinkhorn_reference(stacked, epsilon, iterations)[-batch:]
        for b in range(batch):
            sub = 0.0
            for v in range(views):
                if v == i:
                    continue
                logits = s[b, v] / temperature
                log_p = logits - (logits.max() + math.log(np.exp(logits - logits.max()).sum()))
                sub -= float(np.dot(q[b], log_p))
            out[b] += sub / (views - 1)
    return out / assign_views


def nnclr_reference(projections, predictions, support, support_mask=None, temperature=0.1):
    """Per-sample NNCLR loss; rows of `support` where `support_mask` is False are not
    searched, and with none left the NN of z is z / |z|."""
    z = np.asarray(projections, np.float64)
    p = np.asarray(predictions, np.float64)
    q = np.asarray(support, np.float64)
    written = (np.ones(len(q), bool) if support_mask is None
               else np.asarray(support_mask, bool))
    batch, views, _ = z.shape
    out = np.zeros(batch)
    for i in range(batch):
        for a in range(views):
            za = z[i, a] / np.linalg.norm(z[i, a])
            best, nn = -math.inf, za
            for r in range(len(q)):
                cos = float(np.dot(za, q[r]) / np.linalg.norm(q[r]))
                if written[r] and cos > best:
                    best, nn = cos, q[r] / np.linalg.norm(q[r])
            for b in range(views):
                if a == b:
                    continue
                logits = [float(np.dot(nn, p[k, b]) / np.linalg.norm(p[k, b])) / temperature
                          for k in range(batch)]
                top = max(logits)
                log_sum = top + math.log(sum(math.exp(l - top) for l in logits))
                out[i] += (log_sum - logits[i]) / (views * (views - 1))
    return out
def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def dino_reference(student, teacher, center, student_temperature=0.1,
                   teacher_temperature=0.04):
    s = np.asarray(student, np.float64)
    t = np.asarray(teacher, np.float64)
    c = np.asarray(center, np.float64)
    batch, views, _ = s.shape
    out = np.zeros(batch)
    for b in range(batch):
        pairs = 0
        for i in range(t.shape[1]):
            q = _softmax((t[b, i] - c) / teacher_temperature)
            for v in range(views):
                if v == i:
                    continue
                log_p = np.log(_softmax(s[b, v] / student_temperature))
                out[b] -= float(np.dot(q, log_p))
                pairs += 1
        out[b] /= pairs
    return out


def dino_center_reference(center, teacher, momentum=0.9):
    t = np.asarray(teacher, np.float64)
    return momentum * np.asarray(center, np.float64) + (1 - momentum) * t.reshape(
        -1, t.shape[-1]).mean(axis=0)


def instdisc_reference(features, positives, noise, bank_size, temperature=0.07,
                       proximal=0.0, normalizer=None):
    """(loss [b], d sum(loss) / d features [b, d]) of InstDisc's NCE, sample by sample."""
    f = np.asarray(features, np.float64)
    v = np.asarray(positives, np.float64)
    noise = np.asarray(noise, np.float64)
    batch, m = noise.shape[:2]
    noise_mass = m / bank_size  # m P_n
    loss, grad = np.zeros(batch), np.zeros_like(f)
    for b in range(batch):
        noise_exp = [math.exp(noise[b, k] @ f[b] / temperature) for k in range(m)]
        z = bank_size / m * sum(noise_exp) if normalizer is None else np.broadcast_to(
            np.asarray(normalizer, np.float64), (batch,))[b]
        p_pos = math.exp(v[b] @ f[b] / temperature) / z
        h_pos = p_pos / (p_pos + noise_mass)
        loss[b] = -math.log(h_pos) + proximal * np.sum((f[b] - v[b]) ** 2)
        # d(-log h)/ds = -(1 - h) / T for the positive; d(-log(1 - h))/ds = h / T for noise.
        grad[b] = -(1.0 - h_pos) / temperature * v[b] + 2.0 * proximal * (f[b] - v[b])
        for k in range(m):
            p_k = noise_exp[k] / z
            loss[b] -= math.log(noise_mass / (p_k + noise_mass))
            grad[b] += p_k / (p_k + noise_mass) / temperature * noise[b, k]
    return loss, grad
