r"""Does the extraction matter less than the augmentation? Falcon & Cho's claim on digits.

  nice python tools/framework_claim.py --out=/tmp/framework_claim          # the README table
  python tools/framework_claim.py --seeds=1 --epochs=1 --out=/tmp/fc_smoke  # a smoke run
  for s in 0 1 2; do nice python tools/framework_claim.py --seeds=1 --first_seed=$s \
      --out=/tmp/fc/seed$s & done; wait    # one process per seed, then:
  python tools/framework_claim.py --merge=/tmp/fc/seed0,/tmp/fc/seed1,/tmp/fc/seed2 \
      --out=/tmp/framework_claim

"A Framework For Contrastive Self-Supervised Learning And Designing A New Approach"
(Falcon & Cho 2020) reports that CPC's and AMDIM's representation extractions matter
little next to the augmentation pipeline. This crosses augmentation pipelines with
extraction strategies of `methods.Framework` on the bundled digits, everything else held
fixed (the small CNN, its head, the scaled-dot similarity, AMDIM's clipped NCE with its
penalty, Adam, the epochs and batch), and reports linear top-1 on the test digits
(a logistic regression on the frozen, standardized representation) as mean ± std over
the seeds. Pipelines are settings of the "digits" policy: crop (>= 50% of the area) and
brightness/contrast jitter, the crop alone, and a weak crop (>= 90%) alone. Extractions:
AMDIM's (1-5, 1-7, 5-5 over the pooled output, the 2x2 and the 4x4 block) and the
SimCLR-style global one (pooled output against pooled output). Writes `results.json` and
`table.md` (rows: pipelines; columns: extractions; plus each row's spread across
extractions and each column's across pipelines) into `--out`. `--epochs=0` probes the
untrained encoder instead, for reference.
"""

import argparse
import json
import os
import re
import time

import numpy as np

PIPELINES = {  # key: (label, views.get("digits", **kwargs))
    "crop_jitter": ("crop (>= 50%) + jitter", dict()),
    "crop": ("crop (>= 50%) only", dict(jitter_p=0.0)),
    "weak_crop": ("weak crop (>= 90%) only", dict(area_range=(0.9, 1.0), jitter_p=0.0)),
}
_LINE = re.compile(r"^\[\d+s\] seed \d+ \| (\w+) \| (\w+): ([\d.]+)$")
MAPS = {"r1": "output", "r5": "block3", "r7": "block2"}
EXTRACTIONS = {  # key: (label, extraction, extraction_kwargs)
    "amdim": ("AMDIM: 1-5, 1-7, 5-5", "amdim",
              dict(maps=MAPS, comparisons=("r1-r5", "r1-r7", "r5-r5"))),
    "global": ("global 1-1 (SimCLR-style)", "global", dict()),
}


def digits_arrays():
    """(train images, train labels, test images, test labels) as NumPy arrays."""
    from supcon_tf import data

    out = []
    for split in ("train", "test"):
        ds, _ = data.load("digits", split=split)
        images, labels = zip(*ds.as_numpy_iterator())
        out += [np.stack(images).astype("float32"), np.array(labels)]
    return out


def linear_top1(encoder, arrays):
    """Logistic regression on the frozen, standardized representation: test top-1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_x, train_y, test_x, test_y = arrays
    train = encoder.predict(train_x, batch_size=512, verbose=0)
    test = encoder.predict(test_x, batch_size=512, verbose=0)
    scaler = StandardScaler().fit(train)
    probe = LogisticRegression(max_iter=2000).fit(scaler.transform(train), train_y)
    return float(probe.score(scaler.transform(test), test_y))


def run_one(pipeline, extraction, seed, args, arrays):
    """Pretrains one (pipeline, extraction, seed) and returns its linear top-1."""
    import keras

    from supcon_tf import encoders, losses, methods, views
    from supcon_tf.heads import ProjectionHead

    keras.utils.set_random_seed(seed)
    _, name, kwargs = EXTRACTIONS[extraction]
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=tuple(args.widths),
                           dim=args.dim)
    augmenter = views.MultiView(views.get("digits", image_size=(8, 8), seed=seed,
                                          **PIPELINES[pipeline][1]), num_views=2)
    model = methods.Framework(
        encoder, ProjectionHead(hidden_dims=(args.dim,), output_dim=args.dim // 2,
                                normalize=False),
        loss=losses.NCELoss(tclip=20.0, score_penalty=5e-2), augmenter=augmenter,
        extraction=name, extraction_kwargs=dict(kwargs, seed=seed), similarity="scaled_dot")
    if args.epochs == 0:  # No pretraining: the randomly initialized encoder, for reference.
        return linear_top1(encoder, arrays)
    steps = args.epochs * (len(arrays[0]) // args.batch_size)
    model.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)))
    model.fit(arrays[0], batch_size=args.batch_size, epochs=args.epochs, verbose=0)
    return linear_top1(encoder, arrays)


def table(results, pipelines, extractions):
    """The Markdown table: mean ± std over seeds; the spreads across rows and columns."""
    def cell(values):
        return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}"

    means = {(p, e): np.mean(results[p][e]) for p in pipelines for e in extractions}
    lines = ["| augmentation \\ extraction | "
             + " | ".join(EXTRACTIONS[e][0] for e in extractions)
             + " | spread across extractions |",
             "|---" * (len(extractions) + 2) + "|"]
    for p in pipelines:
        row = [means[p, e] for e in extractions]
        cells = " | ".join(cell(results[p][e]) for e in extractions)
        lines.append(f"| {PIPELINES[p][0]} | {cells} | {100 * (max(row) - min(row)):.1f} |")
    spreads = []
    for e in extractions:
        column = [means[p, e] for p in pipelines]
        spreads.append(f"{100 * (max(column) - min(column)):.1f}")
    lines.append("| spread across augmentations | " + " | ".join(spreads) + " | |")
    return "\n".join(lines) + "\n"


def merge(folders, out):
    """The joint table of earlier runs' `results.json` (their top-1 lists concatenated)."""
    results, cpu = {}, 0.0
    for folder in folders:
        if folder.endswith(".log"):  # A run's printed lines, if it was stopped early.
            run = dict(cpu_s=0.0, top1={})
            for line in open(folder):
                match = _LINE.match(line.strip())
                if match:
                    row = run["top1"].setdefault(match.group(1), {})
                    row.setdefault(match.group(2), []).append(float(match.group(3)))
        else:
            with open(os.path.join(folder, "results.json")) as f:
                run = json.load(f)
        cpu += run["cpu_s"]
        for p, row in run["top1"].items():
            for e, values in row.items():
                results.setdefault(p, {}).setdefault(e, []).extend(values)
    extractions = [e for e in EXTRACTIONS if any(e in row for row in results.values())]
    pipelines = [p for p in PIPELINES  # Rows with every extraction (runs stopped early).
                 if p in results and all(e in results[p] for e in extractions)]
    text = table(results, pipelines, extractions)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(dict(merged=folders, top1=results, cpu_s=cpu), f, indent=1)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"CPU time of the merged runs {cpu:.0f}s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first_seed", type=int, default=0)
    parser.add_argument("--merge", default="",
                        help="comma-separated output folders of earlier runs (e.g. one per "
                             "seed, run in parallel; or their logs, for runs stopped early): "
                             "writes their joint table, runs nothing")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--learning_rate", type=float, default=1e-2)
    parser.add_argument("--widths", type=int, nargs=3, default=(16, 32, 64))
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument("--extractions", default=",".join(EXTRACTIONS))
    args = parser.parse_args(argv)
    pipelines = [p for p in args.pipelines.split(",") if p]
    extractions = [e for e in args.extractions.split(",") if e]
    for given, valid, flag in ((pipelines, PIPELINES, "--pipelines"),
                               (extractions, EXTRACTIONS, "--extractions")):
        unknown = [g for g in given if g not in valid]
        if unknown:
            parser.error(f"{flag}: unknown {unknown}; valid: {', '.join(valid)}")
    os.makedirs(args.out, exist_ok=True)
    if args.merge:
        return merge([d for d in args.merge.split(",") if d], args.out)
    arrays = digits_arrays()
    results = {p: {e: [] for e in extractions} for p in pipelines}
    start = time.time()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for p in pipelines:
            for e in extractions:
                top1 = run_one(p, e, seed, args, arrays)
                results[p][e].append(top1)
                print(f"[{time.time() - start:.0f}s] seed {seed} | {p} | {e}: {top1:.4f}",
                      flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(dict(settings=vars(args), top1=results,
                       cpu_s=time.process_time(), wall_s=time.time() - start), f, indent=1)
    text = table(results, pipelines, extractions)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"CPU time {time.process_time():.0f}s, wall {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
