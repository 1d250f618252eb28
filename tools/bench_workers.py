"""Step time of the command line on two localhost workers against one process, one run.

Runs `python -m supcon_tf` pretraining once in one process and once as two
`--strategy=multi_worker` workers on localhost (a TF_CONFIG each) with the same config
and global batch, one after the other, and reports the seconds per step of the epochs
after the first (the first compiles). On one machine the two workers share its cores,
so this measures what the collectives and the second process cost, not a speed-up.

  python tools/bench_workers.py --config configs/digits_supcon.py:local --epochs 3 \\
      --append BENCHMARKS.md
"""

import argparse
import os
import re
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import append_section, command_line, markdown_table  # noqa: E402
from cli_process import run_cli, run_workers  # noqa: E402

EPOCH = re.compile(r"\[pretrain\] epoch (\d+)/\d+ step (\d+)/\d+ .*\(([\d.]+)s\)")


def step_seconds(out):
    """(median seconds per step of the epochs after the first, steps per epoch)."""
    epochs = [(int(e), int(s), float(t)) for e, s, t in EPOCH.findall(out)]
    if len(epochs) < 2:
        raise SystemExit(f"fewer than 2 epochs in the output:\n{out[-2000:]}")
    per_epoch = epochs[0][1]
    return statistics.median(t / per_epoch for _, _, t in epochs[1:]), per_epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/digits_supcon.py:local")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--append", metavar="FILE", help="append a Markdown section here")
    args, extra = parser.parse_known_args(argv)
    cli = [f"--config={args.config}", f"--config.pretrain.epochs={args.epochs}",
           "--mode=pretrain", *extra]
    root = tempfile.mkdtemp(prefix="bench-workers-")
    status, out = run_cli([*cli, f"--workdir={root}/one"], timeout=3600)
    if status:
        raise SystemExit(f"one process: exit {status}\n{out[-2000:]}")
    one, steps = step_seconds(out)
    results = run_workers([*cli, f"--workdir={root}/two"], 2, timeout=3600)
    for i, (status, out) in enumerate(results):
        if status:
            raise SystemExit(f"worker {i}: exit {status}\n{out[-2000:]}")
    two = max(step_seconds(out)[0] for _, out in results)
    rows = [("1 process", f"{one * 1000:.0f}", "1.00"),
            ("2 localhost workers", f"{two * 1000:.0f}", f"{two / one:.2f}")]
    table = markdown_table(["run", "ms per step", "vs 1 process"], rows)
    print(table)
    if args.append:
        append_section(
            args.append, "Command line: two localhost workers vs one process (CPU)",
            command_line("bench_workers.py", argv),
            [f"{args.config}, pretraining, {steps} steps per epoch of the same global batch; "
             f"median over epochs 2..{args.epochs} (the first compiles); for the workers the "
             "slower one.",
             "Both workers share this machine's cores: the row shows the cost of the "
             "collectives and the second process, not a speed-up."], table)
        print(f"appended to {args.append}")


if __name__ == "__main__":
    main()
