r"""Every method on one page: pretrain digits configs for N seeds on the same budget.

  python tools/compare_methods.py --out=/tmp/compare                  # every digits config
  python tools/compare_methods.py --configs=digits_supcon,digits_simclr,digits_byol \
      --seeds=2 --pretrain_epochs=20 --fractions=0.01,0.1,1.0 --out=/tmp/compare
  python tools/compare_methods.py --local --out=/tmp/compare_local     # a few minutes

Each (config, seed) is one `supcon-tf --mode=all` run with the kNN monitor every epoch,
the online linear probe, fine-tuning on 10% of the labels and the evaluation report.
Per method it records: linear top-1 **online** (the probe trained alongside
pretraining, its accuracy on the last epoch's training batches) and **offline** (the
linear stage on the frozen encoder, test split), kNN top-1 (test split against the
training split), fine-tuning top-1 at 10% labels, Recall@1 of the representation
(test against training), pretraining wall time and steps per second. It writes
`results.json`, `table.md` (mean ± std over the seeds) and `comparison.png` (bars
with error bars, and the kNN monitor's learning curve of each method).

`--fractions` adds the fine-tuning table (`finetune.md`): fine-tuning top-1 at each
label fraction for every method (seed 0), against the linear stage and against
cross-entropy from scratch on the same labels (`finetune.from_scratch`).
`--local` uses each config's `:local` variant and one pretraining epoch.
`--merge=DIR,DIR` writes the tables and picture of earlier outputs (runs split over
several processes) into `--out`, running nothing.
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the table shows: (results key, column title), in order.
COLUMNS = (("linear_online", "linear top-1 online (probe, train batches)"),
           ("linear_offline", "linear top-1 offline (test)"),
           ("knn_top1", "kNN top-1"), ("finetune_10pct", "fine-tune top-1, 10% labels"),
           ("recall_at_1", "Recall@1"), ("wall_s", "pretrain wall s"),
           ("steps_per_s", "steps/s"))
BARS = ("linear_offline", "knn_top1", "finetune_10pct", "recall_at_1")
_EPOCH = re.compile(r"^\[pretrain\] epoch (\d+)/\d+ step (\d+)/\d+ (.*) lr \S+ \(([\d.]+)s\)$")


def parse_pretrain_log(text):
    """[{epoch, step, seconds, <logged metric>: value}] from a run's `[pretrain]` lines."""
    epochs = []
    for line in text.splitlines():
        match = _EPOCH.match(line.strip())
        if match:
            pairs = match.group(3).split()
            row = {k: float(v) for k, v in zip(pairs[::2], pairs[1::2])}
            row.update(epoch=int(match.group(1)), step=int(match.group(2)),
                       seconds=float(match.group(4)))
            epochs.append(row)
    return epochs


def config_path(name, local):
    return os.path.join(ROOT, "configs", f"{name}.py") + (":local" if local else "")


def cli(args, log):
    """Runs `python -m supcon_tf ARGS`; returns its output (raises on failure)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log("$ supcon-tf " + " ".join(args))
    done = subprocess.run([sys.executable, "-m", "supcon_tf", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"supcon-tf {' '.join(args)} exited {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def finetune_args(fraction, epochs, scratch=False):
    """The fine-tuning settings every method gets (batch size fits 1% of digits)."""
    return [f"--config.finetune.label_fraction={fraction}", "--config.finetune.batch_size=8"
            if fraction < 0.05 else "--config.finetune.batch_size=32",
            f"--config.finetune.epochs={epochs}", "--config.finetune.optimizer=adam",
            "--config.finetune.learning_rate=0.001", "--config.finetune.augmentation=digits",
            f"--config.finetune.from_scratch={scratch}"]


def _stage_metrics(workdir, fraction, scratch=False):
    for path in glob.glob(os.path.join(workdir, "stage2", "finetune-*", "metrics.json")):
        with open(path) as f:
            m = json.load(f)
        if m["label_fraction"] == fraction and m.get("from_scratch", False) == scratch:
            return m
    raise FileNotFoundError(f"no fine-tuning metrics at {fraction} in {workdir}")


def run_args(name, seed, args, mode):
    """(work directory, the command's arguments but fine-tuning's) of a method's run."""
    workdir = os.path.join(args.out, "runs", f"{name}-seed{seed}")
    return workdir, [
        f"--config={config_path(name, args.local)}", f"--workdir={workdir}", f"--mode={mode}",
        f"--config.seed={seed}", f"--config.pretrain.epochs={args.pretrain_epochs}",
        f"--config.linear.epochs={args.linear_epochs}", "--config.eval.knn_every_epochs=1",
        "--config.eval.online_probe=True", "--config.eval.plots=True",
        "--config.eval.plot_samples=300", "--config.export.enabled=False",
        "--config.finetune.enabled=True"]


def run_one(name, seed, args, log):
    """One method and seed: pretrain + linear + fine-tune 10% + report; its results."""
    workdir, command = run_args(name, seed, args, "all")
    start = time.time()
    out = cli(command + finetune_args(0.1, args.finetune_epochs), log)
    epochs = parse_pretrain_log(out)
    with open(os.path.join(workdir, "metrics.json")) as f:
        linear = json.load(f)
    with open(os.path.join(workdir, "eval", "report.json")) as f:
        report = json.load(f)
    retrieval = report.get("retrieval") or {}
    recall = (retrieval.get("representation") or {}).get("recall@1")
    seconds = sum(e["seconds"] for e in epochs)
    result = {
        "method": name, "seed": seed, "workdir": workdir, "total_s": time.time() - start,
        "linear_offline": linear["linear_top1"],
        "linear_online": epochs[-1].get("probe_top1") if epochs else None,
        "knn_top1": epochs[-1].get("knn_top1") if epochs else None,
        "knn_curve": [e.get("knn_top1") for e in epochs],
        "finetune_10pct": _stage_metrics(workdir, 0.1)["finetune_top1"],
        "recall_at_1": recall, "wall_s": seconds,
        "steps_per_s": epochs[-1]["step"] / seconds if seconds else None}
    log(f"  {name} seed {seed}: " + ", ".join(
        f"{k} {result[k]:.4f}" for k, _ in COLUMNS if result[k] is not None))
    return result


def run_fractions(name, fractions, args, log, scratch=False):
    """Fine-tuning top-1 at every label fraction on the seed-0 run of `name`."""
    workdir, command = run_args(name, 0, args, "finetune")
    scores = {}
    for fraction in fractions:
        if fraction != 0.1 or scratch:
            cli(command + finetune_args(fraction, args.finetune_epochs, scratch), log)
        scores[fraction] = _stage_metrics(workdir, fraction, scratch)["finetune_top1"]
    return scores


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarize(results):
    """{method: {key: (mean, std)}} over the seeds, methods in their first order."""
    out = {}
    for r in results:
        out.setdefault(r["method"], [])
        out[r["method"]].append(r)
    return {m: {k: _mean_std([r[k] for r in rs]) for k, _ in COLUMNS} | {"seeds": len(rs)}
            for m, rs in out.items()}


def _cell(mean, std, key):
    if mean is None:
        return "—"
    if key == "wall_s":
        return f"{mean:.1f} ± {std:.1f}"
    if key == "steps_per_s":
        return f"{mean:.2f} ± {std:.2f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def write_table(results, path):
    """The Markdown table of `results` (accuracies in %, mean ± std over seeds)."""
    summary = summarize(results)
    lines = ["| method | seeds | " + " | ".join(title for _, title in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for method, s in summary.items():
        lines.append(f"| {method} | {s['seeds']} | "
                     + " | ".join(_cell(*s[k], k) for k, _ in COLUMNS) + " |")
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


def write_finetune_table(fractions, scores, linear, path):
    """`scores`: {method: {fraction: top-1}} (method "cross-entropy from scratch" too);
    `linear`: {method: linear top-1 on all labels}."""
    head = " | ".join(f"fine-tune {100 * f:g}% labels" for f in fractions)
    lines = [f"| method | {head} | linear stage (100% labels) |",
             "|---|" + "---|" * (len(fractions) + 1)]
    for method, by_fraction in scores.items():
        cells = " | ".join(f"{100 * by_fraction[f]:.1f}" for f in fractions)
        lin = f"{100 * linear[method]:.1f}" if method in linear else "—"
        lines.append(f"| {method} | {cells} | {lin} |")
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


def plot(results, path):
    """Bars (mean, error bars = std over seeds) and the kNN monitor's curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    summary = summarize(results)
    methods = list(summary)
    # Bars above, curves below, both as wide as the methods need; 21 methods stay legible.
    fig, (bars, curves) = plt.subplots(2, 1, figsize=(max(12, 0.6 * len(methods) + 2), 9),
                                       dpi=100)
    width = 0.8 / len(BARS)
    for i, key in enumerate(BARS):
        means = [100 * (summary[m][key][0] or 0.0) for m in methods]
        stds = [100 * (summary[m][key][1] or 0.0) for m in methods]
        bars.bar(np.arange(len(methods)) + (i - (len(BARS) - 1) / 2) * width, means, width,
                 yerr=stds, capsize=2, label=dict(COLUMNS)[key])
    bars.set_xticks(np.arange(len(methods)), methods, rotation=35, ha="right", fontsize=8)
    bars.set_xlim(-0.6, len(methods) - 0.4)
    bars.set_ylabel("top-1 / Recall@1 (%)")
    bars.set_ylim(0, 100)
    bars.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    bars.set_title("test split, mean ± std over seeds")
    colours = plt.get_cmap("tab20" if len(methods) > 10 else "tab10")
    for k, method in enumerate(methods):
        runs = [r["knn_curve"] for r in results if r["method"] == method and r["knn_curve"]
                and all(v is not None for v in r["knn_curve"])]
        if runs:
            length = min(len(c) for c in runs)
            curve = 100 * np.mean([c[:length] for c in runs], axis=0)
            curves.plot(np.arange(1, length + 1), curve, marker="os^dv"[k % 5],
                        markersize=4, linestyle=("-", "--")[(k // 20) % 2],
                        color=colours(k % colours.N), label=method)
    curves.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    curves.set_xlabel("pretraining epoch")
    curves.set_ylabel("kNN top-1 (%)")
    curves.set_title("kNN monitor during pretraining (mean over seeds)")
    curves.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0),
                  ncol=1 + len(methods) // 16)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def digits_configs():
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs",
                                                                          "digits_*.py")))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=None,
                        help="comma-separated digits configs (default: every digits_*.py)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--pretrain_epochs", type=int, default=None,
                        help="the same budget for every method (default 30; --local: 1)")
    parser.add_argument("--linear_epochs", type=int, default=None)
    parser.add_argument("--finetune_epochs", type=int, default=None)
    parser.add_argument("--fractions", default="",
                        help="also the fine-tuning table at these label fractions")
    parser.add_argument("--no_scratch", action="store_true",
                        help="without the cross-entropy-from-scratch row (--fractions)")
    parser.add_argument("--local", action="store_true",
                        help="the configs' :local variants, 1 seed, 1 epoch: a few minutes")
    parser.add_argument("--merge", default="",
                        help="comma-separated output folders of earlier runs to combine")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.local:
        args.seeds = 1
    args.pretrain_epochs = args.pretrain_epochs or (1 if args.local else 30)
    args.linear_epochs = args.linear_epochs or (2 if args.local else 10)
    args.finetune_epochs = args.finetune_epochs or (1 if args.local else 10)
    names = args.configs.split(",") if args.configs else digits_configs()
    os.makedirs(args.out, exist_ok=True)
    log = lambda line: print(line, flush=True)  # noqa: E731
    if args.merge:
        return write_outputs(*merged(args.merge.split(",")), args.out)
    results = []
    for name in names:
        for seed in range(args.seeds):
            results.append(run_one(name, seed, args, log))
            with open(os.path.join(args.out, "results.json"), "w") as f:
                json.dump(results, f, indent=1)
    finetune = None
    if args.fractions:
        fractions = [float(f) for f in args.fractions.split(",")]
        scores = {name: run_fractions(name, fractions, args, log) for name in names}
        if not args.no_scratch:
            scores["cross-entropy from scratch"] = run_fractions(names[0], fractions, args,
                                                                 log, scratch=True)
        finetune = {"fractions": fractions, "scores": scores}
        with open(os.path.join(args.out, "finetune.json"), "w") as f:
            json.dump(finetune, f, indent=1)
    write_outputs(results, finetune, args.out)


def merged(folders):
    """(results, fine-tuning scores) of earlier output folders, in their order."""
    results, finetune = [], None
    for folder in folders:
        with open(os.path.join(folder, "results.json")) as f:
            results += json.load(f)
        path = os.path.join(folder, "finetune.json")
        if os.path.exists(path):
            with open(path) as f:
                part = json.load(f)
            finetune = finetune or {"fractions": part["fractions"], "scores": {}}
            finetune["scores"].update(part["scores"])
    return results, finetune


def write_outputs(results, finetune, out):
    os.makedirs(out, exist_ok=True)
    print(write_table(results, os.path.join(out, "table.md")))
    plot(results, os.path.join(out, "comparison.png"))
    if finetune:
        linear = {r["method"]: r["linear_offline"] for r in results if r["seed"] == 0}
        scores = {m: {float(f): v for f, v in s.items()} for m, s in sorted(
            finetune["scores"].items(), key=lambda item: item[0] not in linear)}
        print(write_finetune_table(finetune["fractions"], scores, linear,
                                   os.path.join(out, "finetune.md")))
    print(f"wrote {out}/table.md, comparison.png" + (", finetune.md" if finetune else ""))


if __name__ == "__main__":
    main()
