"""The linear-evaluation report written at the end of stage 2.

`linear_eval_report` runs the trained classifier over the evaluation data and
writes to the workdir: `report.json` (every number), `report.md` (a short
summary for a paper or a pull request: top-1 / top-5, the config's key settings,
per-class accuracy) and `confusion_matrix.png`.
"""

import datetime
import json
import math
import os

import numpy as np

from supcon_tf.evaluation.embed import check_trained, predict_with_labels
from supcon_tf.evaluation.plots import plot_confusion_matrix

# Config settings shown in report.md, matched on the whole dotted name or on its
# last component; report.json keeps the whole config.
KEY_SETTINGS = (
    "method", "dataset", "dataset.name", "encoder", "encoder.name", "width_multiplier",
    "image_size", "epochs", "batch_size", "optimizer", "learning_rate", "lr", "weight_decay",
    "temperature", "num_views", "views.policy", "augmentation", "output_dim", "precision",
    "seed",
)


def flatten_config(config, prefix=""):
    """Dotted-name -> scalar leaves of a (nested) dict or `ml_collections.ConfigDict`."""
    if config is None:
        return {}
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    flat = {}
    for key, value in dict(config).items():
        name = f"{prefix}{key}"
        if hasattr(value, "to_dict") or isinstance(value, dict):
            flat.update(flatten_config(value, name + "."))
        elif isinstance(value, (list, tuple)):
            flat[name] = list(value)
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def key_settings(config, keys=KEY_SETTINGS):
    """The settings of `config` whose dotted name, or its last part, is in `keys`; config order."""
    flat = flatten_config(config)
    return {name: value for name, value in flat.items()
            if name in keys or name.rsplit(".", 1)[-1] in keys}


def classification_summary(logits, labels, num_classes):
    """Top-1, top-k (k = min(5, classes)), per-class accuracy and the confusion matrix."""
    logits = np.asarray(logits, np.float32)
    labels = np.asarray(labels, np.int64)
    top_k = min(5, num_classes)
    predictions = np.argmax(logits, axis=-1)
    ranked = np.argsort(-logits, axis=-1, kind="stable")[:, :top_k]
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    support = confusion.sum(axis=1)
    per_class = [float(confusion[c, c] / support[c]) if support[c] else float("nan")
                 for c in range(num_classes)]
    return {
        "num_samples": int(len(labels)),
        "top1": float(np.mean(predictions == labels)),
        "top5": float(np.mean(np.any(ranked == labels[:, None], axis=1))),
        "top5_k": top_k,
        "per_class_accuracy": per_class,
        "support": support.tolist(),
        "confusion_matrix": confusion.tolist(),
    }


def linear_eval_report(workdir, classifier, eval_data, class_names, config=None,
                       batch_size=256, title="Linear evaluation", retrieval=None,
                       extra=None):
    """Evaluates a trained `classifier` (logits) on `eval_data` and writes the report files.

    `eval_data`: `(images, labels)` arrays or a `tf.data.Dataset` of such batches.
    `class_names`: one name per class (or None for "0", "1", ...). `config`: the
    run's config (dict or ConfigDict), summarized in report.md and kept whole in
    report.json. Returns the report as a dict (also report.json's content), with
    the written files under "files". `retrieval`: {embedding name: `retrieval_metrics`
    result}, reported next to the accuracy. `extra`: {name: value} of a method's own test
    metrics (e.g. CLIP's zero-shot top-1), reported under "extra".
    """
    check_trained(classifier, "classifier")
    logits, labels = predict_with_labels(classifier, eval_data, batch_size=batch_size)
    if logits.ndim != 2:
        raise ValueError(f"`classifier` must output logits [batch, classes]; it output shape "
                         f"{logits.shape}.")
    num_classes = logits.shape[1]
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    class_names = [str(c) for c in class_names]
    if len(class_names) != num_classes:
        raise ValueError(f"`class_names` must hold one name per class ({num_classes}); "
                         f"received {len(class_names)}.")
    if len(labels) == 0:
        raise ValueError("`eval_data` holds no samples.")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"`eval_data` labels must lie in [0, {num_classes}); received labels "
                         f"in [{labels.min()}, {labels.max()}].")

    os.makedirs(workdir, exist_ok=True)
    summary = classification_summary(logits, labels, num_classes)
    files = {name: os.path.join(workdir, name)
             for name in ("report.json", "report.md", "confusion_matrix.png")}
    plot_confusion_matrix(summary["confusion_matrix"], files["confusion_matrix.png"],
                          class_names)
    report = {
        "title": title,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **summary,
        "class_names": class_names,
        "retrieval": retrieval or {},
        "extra": dict(extra or {}),
        "settings": key_settings(config),
        "config": flatten_config(config),
        "files": files,
    }
    with open(files["report.json"], "w", encoding="utf-8") as f:
        json.dump(_json_safe(report), f, indent=2)
    with open(files["report.md"], "w", encoding="utf-8") as f:
        f.write(markdown_report(report))
    return report


def markdown_report(report):
    """The Markdown summary of a report dict (see `linear_eval_report`)."""
    lines = [
        f"# {report['title']}",
        "",
        f"{report['num_samples']} evaluation samples, {len(report['class_names'])} classes.",
        "",
        "| metric | accuracy |",
        "|---|---|",
        f"| top-1 | {_percent(report['top1'])} |",
        f"| top-{report['top5_k']} | {_percent(report['top5'])} |",
        "",
    ]
    lines += retrieval_lines(report.get("retrieval"))
    if report.get("extra"):
        lines += ["## Method metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_percent(v) if isinstance(v, float) else v} |"
                  for k, v in report["extra"].items()]
        lines.append("")
    if report["settings"]:
        lines += ["## Settings", "", "| setting | value |", "|---|---|"]
        lines += [f"| `{k}` | `{v}` |" for k, v in report["settings"].items()]
        lines.append("")
    lines += ["## Per-class accuracy", "", "| class | samples | top-1 |", "|---|---|---|"]
    for name, n, acc in zip(report["class_names"], report["support"],
                            report["per_class_accuracy"]):
        lines.append(f"| {name} | {n} | {_percent(acc)} |")
    lines += ["", "![confusion matrix](confusion_matrix.png)", ""]
    return "\n".join(lines)


def retrieval_lines(retrieval):
    """Markdown table rows of {embedding name: `retrieval_metrics` result} (none if empty)."""
    if not retrieval:
        return []
    keys = [k for k in next(iter(retrieval.values())) if k not in ("num_queries", "ranking")]
    lines = ["## Retrieval", "", "| embedding | ranking | queries | " + " | ".join(keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]
    for name, values in retrieval.items():
        lines.append(f"| {name} | {values.get('ranking', 'cosine')} | {values['num_queries']} | "
                     + " | ".join(_percent(values[k]) for k in keys) + " |")
    return lines + [""]


def _percent(x):
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}%"


def _json_safe(value):
    """NaN -> None (JSON has no NaN), recursively."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
