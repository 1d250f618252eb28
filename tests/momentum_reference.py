"""Float64 NumPy statements of MoCo's Algorithm 1 (He et al. 2020) and BYOL's update
(Grill et al. 2020, Sec. 3.1 and Appendix J pseudo-code), on a tiny network.

The network: encoder tanh(flatten(x) W + b), then an MLP relu(h W0 + b0) W1 + b1
(MoCo's head L2-normalizes; BYOL's projector does not, its predictor is a second
MLP). Parameters are lists of arrays in the Keras layers' variable order.
Gradients are central finite differences of the float64 loss; losses are loops
over anchors, sharing no code with the package.

The teacher update happens at the start of step t from the online weights of
step t (the package's order, see supcon_tf.methods.teacher): teacher = online at
t = 0, else m_{t-1} teacher + (1 - m_{t-1}) online.
"""

import numpy as np


def mlp(params, h):
    w0, b0, w1, b1 = params
    return np.maximum(h @ w0 + b0, 0.0) @ w1 + b1


def encoder(params, x):
    w, b = params
    return np.tanh(x.reshape(len(x), -1) @ w + b)


def normalize(z):
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


def split(flat, shapes):
    out, i = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(flat[i:i + n].reshape(s))
        i += n
    return out


def finite_difference(loss, params, h=1e-6):
    """Central differences of `loss(list of arrays)` w.r.t. every entry."""
    shapes = [p.shape for p in params]
    flat = np.concatenate([p.ravel() for p in params])
    grad = np.zeros_like(flat)
    for i in range(len(flat)):
        up, down = flat.copy(), flat.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (loss(split(up, shapes)) - loss(split(down, shapes))) / (2 * h)
    return split(grad, shapes)


def moco_sample_loss(q, k, queue, temperature):
    """-log exp(q.k/T) / (exp(q.k/T) + sum_j exp(q.queue_j/T)) for one query."""
    positive = np.dot(q, k) / temperature
    negatives = [np.dot(q, n) / temperature for n in queue]
    return -positive + np.log(np.exp(positive) + sum(np.exp(v) for v in negatives))


def supcon_queue_sample_loss(q, y, keys, key_labels, queue, queue_labels, temperature):
    """L^sup_out for one query over contrasts [batch keys, queue], scaled by T."""
    contrasts = list(keys) + list(queue)
    labels = list(key_labels) + list(queue_labels)
    scores = [np.dot(q, c) / temperature for c in contrasts]
    log_denominator = np.log(sum(np.exp(s) for s in scores))
    positives = [s for s, label in zip(scores, labels) if label == y]
    return -temperature * sum(s - log_denominator for s in positives) / len(positives)


class Queue:
    """FIFO of `size` rows with a pointer; rows never written are left out."""

    def __init__(self, size, dim):
        self.values = np.zeros((size, dim))
        self.labels = -np.ones(size, np.int64)
        self.pointer, self.count, self.size = 0, 0, size

    def entries(self):
        return self.values[:self.count], self.labels[:self.count]

    def enqueue(self, keys, labels):
        for key, label in zip(keys, labels):
            self.values[self.pointer] = key
            self.labels[self.pointer] = label
            self.pointer = (self.pointer + 1) % self.size
            self.count = min(self.count + 1, self.size)


def ema(teacher, online, m):
    return [m * t + (1 - m) * o for t, o in zip(teacher, online)]


def moco_reference(online, steps, *, queue_size, momentum, temperature, lr,
                   supervised=False):
    """Trains `online` = [enc W, enc b, head W0, b0, W1, b1] on `steps` [(views, labels)].

    Returns per-step losses, the first step's gradients, the final online and
    teacher parameters and the queue.
    """
    online = [np.asarray(p, np.float64) for p in online]
    teacher, queue, losses, first_grads = None, Queue(queue_size, online[-1].shape[-1]), [], None

    def embed(params, x):
        return normalize(mlp(params[2:], encoder(params[:2], x)))

    for t, (views, labels) in enumerate(steps):
        views = np.asarray(views, np.float64)
        teacher = [p.copy() for p in online] if t == 0 else ema(teacher, online, momentum)
        keys = embed(teacher, views[:, 1])
        queued, queued_labels = queue.entries()

        def loss(params):
            queries = embed(params, views[:, 0])
            if supervised:
                return np.mean([supcon_queue_sample_loss(q, y, keys, labels, queued,
                                                         queued_labels, temperature)
                                for q, y in zip(queries, labels)])
            return np.mean([moco_sample_loss(q, k, queued, temperature)
                            for q, k in zip(queries, keys)])

        losses.append(loss(online))
        grads = finite_difference(loss, online)
        first_grads = grads if first_grads is None else first_grads
        online = [p - lr * g for p, g in zip(online, grads)]
        queue.enqueue(keys, labels)
    return dict(losses=losses, grads=first_grads, online=online, teacher=teacher,
                queue=queue)


def byol_momentum(k, base, total_steps):
    """tau_k = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2 (BYOL, Sec. 3.2)."""
    return 1 - (1 - base) * (np.cos(np.pi * k / total_steps) + 1) / 2


def byol_reference(online, predictor, steps, *, momentum, total_steps, lr):
    """BYOL on `online` = [enc W, enc b, proj W0, b0, W1, b1] and `predictor` [W0, b0, W1, b1].

    Loss of a sample: l(q_1, z'_2) + l(q_2, z'_1), l(a, b) = ||a/|a| - b/|b|||^2.
    """
    params = [np.asarray(p, np.float64) for p in online + predictor]
    n_online = len(online)
    teacher, losses, first_grads = None, [], None

    def project(p, x):
        return mlp(p[2:6], encoder(p[:2], x))

    for t, (views, _) in enumerate(steps):
        views = np.asarray(views, np.float64)
        if t == 0:
            teacher = [p.copy() for p in params[:n_online]]
        else:
            teacher = ema(teacher, params[:n_online], byol_momentum(t - 1, momentum,
                                                                    total_steps))
        targets = [normalize(project(teacher, views[:, v])) for v in (0, 1)]

        def loss(p):
            predictions = [normalize(mlp(p[n_online:], project(p, views[:, v])))
                           for v in (0, 1)]
            per_sample = [np.sum((predictions[0][i] - targets[1][i]) ** 2)
                          + np.sum((predictions[1][i] - targets[0][i]) ** 2)
                          for i in range(len(views))]
            return np.mean(per_sample)

        losses.append(loss(params))
        grads = finite_difference(loss, params)
        first_grads = grads if first_grads is None else first_grads
        params = [p - lr * g for p, g in zip(params, grads)]
    return dict(losses=losses, grads=first_grads, online=params, teacher=teacher)
