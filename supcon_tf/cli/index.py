"""`--mode=index` and `supcon-tf-search`: an `EmbeddingIndex` of a run's exported model.

  supcon-tf --mode=index --workdir=DIR      # embeds the train split with DIR/export's
                                            # `project`, writes DIR/index (+ report.md)
  supcon-tf-search --workdir=DIR --queries=test:0,1,2 --k=5 [--picture=OUT.png]
  supcon-tf-search --workdir=DIR --images=a.png,b.jpg --k=5

The index holds the train split's embeddings, class ids and payloads
{"split": ..., "index": i}; its matching threshold (nearest neighbour within it =
same class) is calibrated on the test split at `TARGET_PRECISIONS` and written to
index/report.json and report.md, each number with the ranking that produced it.
"""

import json
import os
import sys

import numpy as np

from supcon_tf.cli.errors import UsageError

INDEX_DIR = "index"
TARGET_PRECISIONS = (0.9, 0.99)
SIGNATURE = "project"


def _embed(project, dataset):
    """(embeddings, labels) of a batched (images, labels) dataset through `project`."""
    embeddings, labels = [], []
    for images, batch_labels in dataset:
        embeddings.append(np.asarray(project(images)["projection"]))
        labels.append(np.asarray(batch_labels).reshape(-1))
    return np.concatenate(embeddings), np.concatenate(labels)


def _project(export_dir):
    from supcon_tf.export.loading import load_saved_model

    if not os.path.isdir(export_dir):
        raise UsageError(f"No exported model at {export_dir!r}: run --mode=export (or all) "
                         "on this work directory first.")
    try:
        return load_saved_model(export_dir, SIGNATURE)
    except ValueError as e:
        raise UsageError(f"{e} (--mode=index needs the embedding: a method with a head).")


def build_index(run):
    """Writes `run`'s index and calibration report under WORKDIR/index; returns the dir."""
    from supcon_tf.evaluation.index import EmbeddingIndex

    project = _project(run.path("export"))
    dataset = run.config["dataset"]
    embeddings, labels = _embed(project, run.eval_data(run.train_data))
    index = EmbeddingIndex(ranking="cosine")
    index.add(embeddings, labels, payloads=[{"split": dataset["train_split"], "index": i}
                                            for i in range(len(labels))])
    test, test_labels = _embed(project, run.eval_data(run.test_data))
    calibrations = [index.calibrate(test, test_labels, target) for target in TARGET_PRECISIONS]
    target = run.path(INDEX_DIR)
    with run.output(INDEX_DIR) as folder:
        index.save(folder)  # The threshold of the last (strictest) target.
        report = {"size": len(index), "dim": index.dim, "signature": SIGNATURE,
                  "queries": dataset["test_split"], "calibration": calibrations}
        with open(os.path.join(folder, "report.json"), "w") as f:
            json.dump(report, f, indent=2)
        with open(os.path.join(folder, "report.md"), "w") as f:
            f.write(_markdown(report))
    run.log(f"[index] {len(index)} embeddings of {dataset['train_split']} in {target}; "
            + "; ".join(f"precision {c['target_precision']:g}: threshold "
                        f"{c['threshold'] if c['threshold'] is None else round(c['threshold'], 4)}"
                        f" ({c['ranking']}), recall {c['recall']:.3f}" for c in calibrations))
    return target


def _markdown(report):
    lines = ["# Embedding index", "",
             f"{report['size']} embeddings of dim {report['dim']} (signature "
             f"`{report['signature']}`). Matching threshold on the nearest neighbour, "
             f"calibrated on the {report['queries']} split (match = same class):", "",
             "| ranking | target precision | threshold (distance) | precision | recall |",
             "|---|---|---|---|---|"]
    for c in report["calibration"]:
        fmt = (lambda v: "n/a" if v is None else f"{v:.4f}")
        lines.append(f"| {c['ranking']} | {c['target_precision']:g} | {fmt(c['threshold'])} | "
                     f"{fmt(c['precision'])} | {c['recall']:.4f} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ search command


def _split_images(config, split, indices):
    """Images (float32 in [0, 1], eval transform) and labels of `split` at `indices`."""
    from supcon_tf.cli import build

    dataset = dict(config["dataset"], train_split=split, test_split=split)
    train, _, info = build.load_data(dataset, lambda *a: None)
    shape = build.image_shape(config, info, lambda *a: None)
    transform = build.augmenter("eval", shape[:2], key="eval")
    wanted = set(indices)
    images, labels = {}, {}
    for i, (image, label) in enumerate(train):
        if i in wanted:
            images[i] = np.asarray(transform(image[None], training=False)[0])
            labels[i] = int(label)
        if len(images) == len(wanted):
            break
    missing = sorted(wanted - set(images))
    if missing:
        raise UsageError(f"--queries: split {split!r} has no image at {missing}.")
    return np.stack([images[i] for i in indices]), [labels[i] for i in indices]


def _parse_queries(value):
    split, _, indices = value.partition(":")
    try:
        return split, [int(i) for i in indices.split(",") if i]
    except ValueError:
        raise UsageError(f"--queries must be SPLIT:I,J,... (e.g. test:0,1,2); received "
                         f"{value!r}.") from None


def search(workdir, k=5, queries=None, images=None, picture=None):
    """The k nearest rows of the run's index to each query; writes `picture` if given."""
    from supcon_tf.evaluation.index import EmbeddingIndex

    with open(os.path.join(workdir, "config.json")) as f:
        config = json.load(f)
    index = EmbeddingIndex.load(os.path.join(workdir, INDEX_DIR))
    project = _project(os.path.join(workdir, "export"))
    if (queries is None) == (images is None):
        raise UsageError("Pass exactly one of --queries=SPLIT:I,J and --images=PATH,PATH.")
    if queries is not None:
        split, indices = _parse_queries(queries)
        pixels, labels = _split_images(config, split, indices)
        names = [f"{split}:{i}" for i in indices]
        embeddings = np.asarray(project(pixels)["projection"])
    else:
        from supcon_tf.export.loading import load_saved_model

        names = images.split(",")
        encoded = load_saved_model(os.path.join(workdir, "export"), "encoded")
        data = []
        for path in names:
            with open(path, "rb") as f:
                data.append(f.read())
        embeddings = np.asarray(encoded(data)["projection"])
        pixels, labels = None, [None] * len(names)
    found = index.search(embeddings, k=k)
    results = []
    for q, name in enumerate(names):
        near = found["distances"][q, 0]
        results.append({
            "query": name, "label": labels[q],
            "match": None if index.threshold is None else bool(near <= index.threshold),
            "neighbours": [{"id": int(i), "label": int(l), "distance": float(d), "payload": p}
                           for i, l, d, p in zip(found["ids"][q], found["labels"][q],
                                                 found["distances"][q], found["payloads"][q])]})
    if picture:
        _picture(config, picture, pixels, results)
    return results


def _picture(config, path, pixels, results):
    """Each query (left) and its neighbours, labelled with class and distance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_split = {}
    for r in results:
        for n in r["neighbours"]:
            by_split.setdefault(n["payload"]["split"], set()).add(n["payload"]["index"])
    lookup = {}
    for split, ids in by_split.items():
        ids = sorted(ids)
        images, _ = _split_images(config, split, ids)
        lookup.update({(split, i): img for i, img in zip(ids, images)})
    k = len(results[0]["neighbours"])
    fig, axes = plt.subplots(len(results), k + 1, figsize=(1.3 * (k + 1), 1.4 * len(results)),
                             squeeze=False)
    for row, r in enumerate(results):
        cells = [(pixels[row] if pixels is not None else None, f"query {r['label']}")]
        cells += [(lookup[(n["payload"]["split"], n["payload"]["index"])],
                   f"{n['label']}  d={n['distance']:.3f}") for n in r["neighbours"]]
        for ax, (image, title) in zip(axes[row], cells):
            ax.axis("off")
            if image is not None:
                ax.imshow(np.squeeze(image), cmap="gray_r" if image.shape[-1] == 1 else None)
            ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    """`supcon-tf-search`: prints one JSON line per query; status 2 on bad input."""
    import argparse

    parser = argparse.ArgumentParser(prog="supcon-tf-search", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--workdir", required=True, help="a run with an export and an index")
    parser.add_argument("--queries", help="SPLIT:I,J,... images of the run's dataset")
    parser.add_argument("--images", help="PATH,PATH,... JPEG or PNG files")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--picture", help="write the queries and neighbours to this PNG")
    args = parser.parse_args(argv)
    try:
        results = search(args.workdir, args.k, args.queries, args.images, args.picture)
    except (UsageError, ValueError, FileNotFoundError) as e:
        print(f"supcon-tf-search: error: {e}", file=sys.stderr)
        sys.exit(2)
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
