"""Pictures: the confusion matrix and a 2-D map of embeddings coloured by class.

Drawn on matplotlib `Figure`s with the Agg canvas (no display, and pyplot's
global backend is left alone), at a fixed size: a figure of `figsize` inches
saved at `dpi` is exactly figsize * dpi pixels.
"""

import os

import numpy as np

from supcon_tf.evaluation.embed import as_class_ids
from supcon_tf.validation import check_choice, check_positive

EMBEDDING_METHODS = ("tsne", "umap", "auto")


def _figure(figsize, dpi):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _class_names(class_names, num_classes):
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    class_names = [str(c) for c in class_names]
    if len(class_names) < num_classes:
        raise ValueError(
            f"`class_names` must name all {num_classes} classes; received {len(class_names)} "
            "names."
        )
    return class_names


def confusion_figsize(num_classes):
    """Default square side in inches: grows with the class count, within [5, 16]."""
    return min(16.0, max(5.0, 0.45 * num_classes + 2.0))


def plot_confusion_matrix(matrix, path, class_names=None, figsize=None, dpi=100,
                          title="Confusion matrix (rows: true class, normalized)"):
    """Saves a row-normalized confusion matrix `matrix` [classes, classes] of counts as PNG."""
    matrix = np.asarray(matrix, np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"`matrix` must be square [classes, classes]; received shape "
                         f"{matrix.shape}.")
    check_positive("dpi", dpi)
    n = matrix.shape[0]
    names = _class_names(class_names, n)
    side = confusion_figsize(n) if figsize is None else None
    figsize = (side, side) if figsize is None else tuple(figsize)
    totals = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)

    fig, ax = _figure(figsize, dpi)
    image = ax.imshow(normalized, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    upright = n <= 10 and max(len(name) for name in names) <= 4
    ax.set_xticks(range(n), labels=names, rotation=0 if upright else 90)
    ax.set_yticks(range(n), labels=names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if n <= 20:  # Cell values stay readable up to about 20 classes.
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{normalized[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if normalized[i, j] > 0.5 else "black")
    fig.tight_layout()
    _save(fig, path, dpi)
    return str(path)


def embedding_map(embeddings, method="tsne", seed=0):
    """2-D coordinates [n, 2] of `embeddings` [n, dim] by t-SNE or UMAP ("auto": UMAP if there)."""
    check_choice("method", method, EMBEDDING_METHODS)
    embeddings = np.asarray(embeddings, np.float32)
    if method == "auto":
        method = "umap" if _has_umap() else "tsne"
    if method == "umap":
        if not _has_umap():
            raise ImportError("method='umap' needs the `umap-learn` package (pip install "
                              "umap-learn); use method='tsne' (scikit-learn) instead.")
        import umap

        return umap.UMAP(n_components=2, random_state=seed).fit_transform(embeddings)
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n, dim = embeddings.shape
    if dim > 50 and n > 50:  # The usual PCA step before t-SNE: faster, less noise.
        embeddings = PCA(n_components=50, random_state=seed).fit_transform(embeddings)
    perplexity = min(30.0, max(2.0, (n - 1) / 3.0))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed
                ).fit_transform(embeddings)


def plot_embedding(embeddings, labels, path, method="tsne", class_names=None, sample=2000,
                   seed=0, figsize=(8, 8), dpi=100, title=None):
    """Saves a 2-D map of a random sample of `embeddings`, coloured by class, as PNG.

    Returns a dict with the `path`, the sampled `indices` [m] and their 2-D
    `points` [m, 2].
    """
    embeddings = np.asarray(embeddings, np.float32)
    labels = as_class_ids(labels)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise ValueError(
            "`embeddings` must be [n, dim] with one label each; received shapes "
            f"{embeddings.shape} and {labels.shape}."
        )
    if len(embeddings) < 5:
        raise ValueError(f"`embeddings` must hold at least 5 samples to map; received "
                         f"{len(embeddings)}.")
    check_positive("sample", sample)
    check_choice("method", method, EMBEDDING_METHODS)
    if method == "auto":
        method = "umap" if _has_umap() else "tsne"
    num_classes = int(labels.max()) + 1
    names = _class_names(class_names, num_classes)
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(len(embeddings), size=min(sample, len(embeddings)),
                                 replace=False))
    points = embedding_map(embeddings[indices], method=method, seed=seed)
    chosen = labels[indices]

    from matplotlib import colormaps

    cmap = colormaps["tab10" if num_classes <= 10 else "tab20"]
    fig, ax = _figure(figsize, dpi)
    for c in np.unique(chosen):
        mask = chosen == c
        ax.scatter(points[mask, 0], points[mask, 1], s=6, color=cmap(int(c) % cmap.N),
                   label=names[c])
    if num_classes <= 20:
        ax.legend(markerscale=3, fontsize=8, loc="best", frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])
    used = {"umap": "UMAP", "tsne": "t-SNE"}[method]
    ax.set_title(title or f"{used} of {len(indices)} representations")
    fig.tight_layout()
    _save(fig, path, dpi)
    return {"path": str(path), "indices": indices, "points": points}


def _has_umap():
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def _save(fig, path, dpi):
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
