"""Kill-and-resume trials: SIGKILL a CLI run at random steps, rerun it, compare bit for bit.

Runs `python -m supcon_tf` (with the given config and overrides) once uninterrupted as
the reference, then N trials. A trial starts the same run in a fresh work directory and
kills it with SIGKILL at a random training step, or in the middle of a checkpoint write
(a share of the kills), through the CLI's test faults (`$SUPCON_TF_FAULT`, see
supcon_tf/cli/checkpoint.py), in any stage of the run (pretrain, linear); it reruns the
same command (possibly killed again) until the run completes. Each rerun must say it
resumes from the newest complete checkpoint (never a torn one) and that finished stages
are complete. Then every stage's final checkpoint (all model and optimizer variables:
teacher weights, queues and any other state a method keeps in Keras variables are
included), its step and optimizer iterations, and `metrics.json` must equal the
reference's exactly. Nothing depends on the method: any configs/*.py works.

The tool adds `--config.deterministic=True` (needed for bit equality),
`--config.checkpoint_every_steps=K` (`--checkpoint-every`, small so kills land between
and during saves), and no plots or export (after training; not what is checked);
overrides given after the tool's options win except `deterministic`.

    python tools/preemption_trials.py --config configs/digits_supcon.py --trials 10 \\
        --config.pretrain.epochs=4 --config.linear.epochs=2 --append BENCHMARKS.md

With `--workers 2` every run is a localhost cluster of two workers (`--strategy=
multi_worker`, a TF_CONFIG each, tools/cli_process.py's `run_workers`): a kill lands in
one worker (any worker at a step, the chief, the one that writes, in a save), the other
is then killed as a cluster scheduler would, and the rerun starts both again.

Prints one line per trial and "N/N trials equal"; exits 1 if a trial differs or fails,
2 if the reference run fails, 130 on Ctrl-C (the running CLI process is killed).
Workdirs of equal trials are deleted unless `--keep`; logs of every run stay in the
workdir root.
"""

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import append_section, command_line, markdown_table  # noqa: E402
from cli_process import (  # noqa: E402
    FAULT_ENV, complete_steps, read_checkpoint, run_cli, run_workers, stages, torn_files)

KINDS = ("step", "save")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], allow_abbrev=False,
        epilog="Other --config.KEY=VALUE / --mode=... arguments go to the CLI as given.")
    parser.add_argument("--config", required=True, help="config file[:arg], as for the CLI")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--workdir-root", help="folder for the runs (default: a new temp dir)")
    parser.add_argument("--checkpoint-every", type=int, default=2,
                        help="--config.checkpoint_every_steps for every run")
    parser.add_argument("--save-share", type=float, default=0.3,
                        help="share of the kills that land in a checkpoint write")
    parser.add_argument("--max-kills", type=int, default=3, help="kills per trial, at most")
    parser.add_argument("--kills", help="a fixed kill sequence for every trial instead of "
                        "random ones: comma-separated [STAGE:]KIND, KIND step or save")
    parser.add_argument("--rerun-finished", action="store_true",
                        help="rerun each finished trial once more: it must train nothing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill plans")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per CLI run")
    parser.add_argument("--workers", type=int, default=1,
                        help="localhost workers per run (2+: a multi-worker cluster)")
    parser.add_argument("--keep", action="store_true", help="keep every work directory")
    parser.add_argument("--append", metavar="FILE", help="append a Markdown section here")
    args, extra = parser.parse_known_args(argv)
    for arg in extra:
        if not arg.startswith("--") or arg.split("=")[0] in ("--workdir", "--overwrite"):
            parser.error(f"argument {arg!r}: only --config.KEY=VALUE and CLI flags other "
                         "than --workdir / --overwrite may be passed on to the CLI")
        if arg.startswith("--config.deterministic=") and arg.split("=", 1)[1] != "True":
            parser.error("bit equality needs --config.deterministic=True; received " + arg)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1; received {args.workers}")
    if args.trials < 1:
        parser.error(f"--trials must be at least 1; received {args.trials}")
    if args.kills:
        for item in args.kills.split(","):
            if item.rpartition(":")[2] not in KINDS:
                parser.error(f"--kills: each item is [STAGE:]step or [STAGE:]save; "
                             f"received {item!r}")
    return args, extra


def cli_args(args, extra, workdir):
    return [f"--config={args.config}", "--config.deterministic=True",
            f"--config.checkpoint_every_steps={args.checkpoint_every}",
            "--config.eval.plots=False", "--config.export.enabled=False",
            *extra, f"--workdir={workdir}"]


class Layout:
    """What the reference run shows about each stage: total steps, steps per epoch, and
    the steps at which a run saves (every `checkpoint_every_steps` and at epoch ends)."""

    def __init__(self, reference):
        with open(os.path.join(reference, "config.json")) as f:
            self.every = int(json.load(f)["checkpoint_every_steps"])
        self.stages = stages(reference)
        self.total, self.per_epoch = {}, {}
        for stage in self.stages:
            marker, _ = read_checkpoint(reference, stage)
            self.total[stage] = int(marker["total_steps"])
            self.per_epoch[stage] = self.total[stage] // int(marker["epoch"])

    def saves(self, stage, after):
        """Steps of the saves a run resumed at step `after` makes in `stage`, in order."""
        spe = self.per_epoch[stage]
        return [t for t in range(after + 1, self.total[stage] + 1)
                if t % spe == 0 or (self.every and t % self.every == 0)]

    def done(self, workdir):
        """{stage: step of its newest complete checkpoint (0: none)}."""
        return {s: (complete_steps(workdir, s) or [0])[-1] for s in self.stages}

    def complete(self, workdir):
        return all(step >= self.total[s] for s, step in self.done(workdir).items())


def plan_kill(rng, layout, done, save_share, kind=None, stage=None):
    """(stage, kind, fault env value, expected torn step or None) for the next run."""
    open_stages = [s for s in layout.stages if done[s] < layout.total[s]]
    if stage is None:  # Weighted by the steps left, so every step is equally likely.
        weights = [layout.total[s] - done[s] for s in open_stages]
        stage = rng.choices(open_stages, weights)[0]
    elif stage not in open_stages:
        stage = open_stages[0]
    kind = kind or ("save" if rng.random() < save_share else "step")
    if kind == "step":
        step = rng.randint(done[stage] + 1, layout.total[stage])
        return stage, kind, f"{stage}:kill_at_step={step}", step
    saves = layout.saves(stage, done[stage])
    n = rng.randint(1, len(saves))
    return stage, kind, f"{stage}:kill_in_save={n}", saves[n - 1]


def check_resume(out, layout, done):
    """Problems with what a run printed about resuming, given the state it started in."""
    problems = []
    for stage, step in done.items():
        resumed = f"[{stage}] resuming from the checkpoint of step "
        if step >= layout.total[stage]:
            if f"[{stage}] already complete ({step} steps)" not in out:
                problems.append(f"{stage} was complete but the rerun did not say so")
        elif step:
            if f"{resumed}{step} " not in out:
                shown = [line for line in out.splitlines() if resumed in line]
                problems.append(f"{stage}: expected to resume from step {step}, printed "
                                f"{shown or 'no resume line'}")
        elif resumed in out:
            problems.append(f"{stage} had no complete checkpoint but the run resumed")
    return problems


def check_kill(layout, workdir, before, stage, kind, at):
    """Problems with the state a kill left; returns (problems, newest complete step)."""
    after = layout.done(workdir)
    got = after[stage]
    problems = []
    if kind == "step":
        if not before[stage] <= got <= at:
            problems.append(f"killed after {stage} step {at}, newest checkpoint is {got}")
    else:
        saves = layout.saves(stage, before[stage])
        expected = saves[saves.index(at) - 1] if saves.index(at) else before[stage]
        if got != expected:
            problems.append(f"killed in the save of {stage} step {at}: newest complete "
                            f"checkpoint {got}, expected {expected}")
        if f"ckpt-{at:09d}.npz" not in torn_files(workdir, stage):
            problems.append(f"no torn data file of {stage} step {at}: the kill did not land "
                            "mid-write")
    for s in layout.stages[:layout.stages.index(stage)]:
        if after[s] < layout.total[s]:
            problems.append(f"killed in {stage} but {s} is not complete ({after[s]})")
    return problems, got


def compare(reference, workdir):
    """Every difference between two finished runs' final checkpoints and metrics."""
    diffs = []
    for stage in sorted(set(stages(reference)) | set(stages(workdir))):
        (ref_marker, ref), (marker, got) = (read_checkpoint(reference, stage),
                                            read_checkpoint(workdir, stage))
        if ref_marker is None or marker is None:
            diffs.append(f"{stage}: a complete checkpoint in only one of the runs")
            continue
        for key in ("step", "total_steps", "optimizer_iterations", "num_variables"):
            if ref_marker.get(key) != marker.get(key):
                diffs.append(f"{stage} {key}: {marker.get(key)} vs {ref_marker.get(key)}")
        if len(ref) != len(got):
            diffs.append(f"{stage}: {len(got)} variables vs {len(ref)}")
        for i, (a, b) in enumerate(zip(ref, got)):
            if a.shape != b.shape or a.dtype != b.dtype:
                diffs.append(f"{stage} variable {i}: {b.dtype}{list(b.shape)} vs "
                             f"{a.dtype}{list(a.shape)}")
            elif a.tobytes() != b.tobytes():  # Bit for bit (NaN-safe, -0.0 != 0.0).
                unequal = a.reshape(-1).view("u1").reshape(a.size, -1) != \
                    b.reshape(-1).view("u1").reshape(b.size, -1)
                count = int(unequal.any(axis=1).sum())
                gap = abs(a.astype("float64") - b.astype("float64")).max() \
                    if a.dtype.kind in "fiu" else "n/a"
                diffs.append(f"{stage} variable {i} {a.dtype}{list(a.shape)}: {count} of "
                             f"{a.size} values differ (max |difference| {gap})")
    metrics = [os.path.join(d, "metrics.json") for d in (reference, workdir)]
    if any(os.path.exists(m) for m in metrics):
        loaded = [json.load(open(m)) if os.path.exists(m) else None for m in metrics]
        if loaded[0] != loaded[1]:
            diffs.append(f"metrics.json: {loaded[1]} vs {loaded[0]}")
    return diffs


def run_logged(args, extra, workdir, log_path, title, env=None, worker=0):
    """Runs the CLI (as `args.workers` workers, the fault in `worker`); (status, output):
    the faulted worker's status, else the first non-zero one."""
    start = time.time()
    if args.workers > 1:
        faults = [env if i == worker else None for i in range(args.workers)]
        results = run_workers(cli_args(args, extra, workdir), args.workers,
                              timeout=args.timeout, faults=faults)
        statuses = [s for s, _ in results]
        status = statuses[worker] if env else next((s for s in statuses if s), 0)
        out = "".join(f"----- worker {i}: exit {s}\n{o}" for i, (s, o) in enumerate(results))
    else:
        fault = {FAULT_ENV: env} if env else {}
        status, out = run_cli(cli_args(args, extra, workdir), timeout=args.timeout, **fault)
    with open(log_path, "a") as f:
        f.write(f"===== {title} ({FAULT_ENV}={env or ''}): exit {status}, "
                f"{time.time() - start:.1f} s\n{out}\n")
    return status, out


def trial(args, extra, layout, reference, workdir, log_path, rng):
    """Runs one trial; returns (events, runs, differences or problems)."""
    fixed = [item.rpartition(":") for item in args.kills.split(",")] if args.kills else None
    events, runs = [], 0
    while not layout.complete(workdir) or runs == 0:
        done = layout.done(workdir)
        kills = len(events)
        if fixed is not None:
            kill = kills < len(fixed)
        else:
            kill = kills == 0 or (kills < args.max_kills and rng.random() < 0.5)
        plan = None
        if kill:
            stage, _, kind = fixed[kills] if fixed else (None, None, None)
            plan = plan_kill(rng, layout, done, args.save_share, kind or None, stage or None)
        runs += 1
        # A torn save can only be made by the chief, the one worker that writes.
        worker = 0
        if plan and plan[1] == "step" and args.workers > 1:
            worker = rng.randrange(args.workers)
        status, out = run_logged(args, extra, workdir, log_path, f"run {runs}",
                                 plan[2] if plan else None, worker)
        problems = check_resume(out, layout, done) if runs > 1 else []
        if plan:
            stage, kind, _, at = plan
            if status != -signal.SIGKILL:
                return events, runs, problems + [
                    f"{stage}:{kind} at {at}: expected SIGKILL, exit {status}: "
                    f"{out.strip().splitlines()[-1:] or ''}"]
            found, newest = check_kill(layout, workdir, done, stage, kind, at)
            problems += found
            what = f"{stage} step {at}" if kind == "step" else f"{stage} save of step {at}"
            what += f" (worker {worker})" if args.workers > 1 else ""
            events.append(f"{what} -> ckpt {newest}")
        elif status != 0 or not layout.complete(workdir):
            return events, runs, problems + [
                f"unkilled run ended with exit {status} and {layout.done(workdir)}: "
                f"{out.strip().splitlines()[-1:] or ''}"]
        if problems:
            return events, runs, problems
        if runs > args.max_kills + len(fixed or ()) + 2:
            return events, runs, ["the run did not complete"]
    if args.rerun_finished:
        files = {s: sorted(os.listdir(os.path.join(workdir, "checkpoints", s)))
                 for s in layout.stages}
        runs += 1
        status, out = run_logged(args, extra, workdir, log_path, "rerun of the finished run")
        problems = check_resume(out, layout, layout.done(workdir))
        if status != 0:
            problems.append(f"rerun of the finished run: exit {status}")
        if files != {s: sorted(os.listdir(os.path.join(workdir, "checkpoints", s)))
                     for s in layout.stages}:
            problems.append("rerun of the finished run wrote checkpoints")
        if problems:
            return events, runs, problems
    return events, runs, compare(reference, workdir)


def campaign(args, extra, root):
    """Reference plus trials; returns (rows, equal count) or raises SystemExit(2)."""
    reference = os.path.join(root, "reference")
    start = time.time()
    status, out = run_logged(args, extra, reference, os.path.join(root, "reference.log"),
                             "reference")
    if status != 0:
        print(f"reference run failed (exit {status}); see {root}/reference.log:\n"
              + "\n".join(out.strip().splitlines()[-15:]), file=sys.stderr)
        raise SystemExit(2)
    layout = Layout(reference)
    totals = ", ".join(f"{s} {layout.total[s]} steps ({layout.per_epoch[s]} per epoch)"
                       for s in layout.stages)
    print(f"reference: {totals}, checkpoint every {layout.every} steps "
          f"({time.time() - start:.0f} s)")
    rows, equal = [], 0
    for i in range(1, args.trials + 1):
        rng = random.Random(f"{args.seed}-{i}")
        workdir = os.path.join(root, f"trial-{i:02d}")
        start = time.time()
        events, runs, diffs = trial(args, extra, layout, reference, workdir,
                                    os.path.join(root, f"trial-{i:02d}.log"), rng)
        result = "equal" if not diffs else "DIFFERENT: " + "; ".join(diffs[:5]) + (
            f"; ... ({len(diffs)} in all)" if len(diffs) > 5 else "")
        equal += not diffs
        print(f"trial {i}/{args.trials}: killed at {', '.join(events) or 'nothing'}; "
              f"{runs} runs, {time.time() - start:.0f} s: {result}", flush=True)
        rows.append((i, "; ".join(events), runs, result))
        if not diffs and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return layout, rows, equal


def main(argv=None):
    args, extra = parse_args(argv)
    root = args.workdir_root or tempfile.mkdtemp(prefix="preemption-trials-")
    os.makedirs(root, exist_ok=True)
    if os.path.exists(os.path.join(root, "reference")):
        raise SystemExit(f"{root} already holds a campaign (reference/); choose another "
                         "--workdir-root")

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    start = time.time()
    try:
        layout, rows, equal = campaign(args, extra, root)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the running CLI process was killed; runs left in {root}",
              file=sys.stderr)
        return 130
    summary = f"{equal}/{args.trials} trials equal"
    print(f"{summary} ({time.time() - start:.0f} s); logs in {root}")
    if equal == args.trials and not args.keep:
        shutil.rmtree(os.path.join(root, "reference"), ignore_errors=True)
    if args.append:
        kills = [e for row in rows for e in row[1].split("; ") if e]
        saves = sum(" save of " in e for e in kills)
        append_section(
            args.append, f"Reliability: kill-and-resume trials of {args.config}",
            command_line("preemption_trials.py", argv),
            [f"Result: **{summary}** (bit-equal final checkpoints of "
             f"{', '.join(layout.stages)}: all model and optimizer variables, step, "
             "optimizer iterations" + (", and metrics.json" if "linear" in layout.stages
                                       else "") + ").",
             "Stages: " + ", ".join(f"{s} {layout.total[s]} steps" for s in layout.stages)
             + f"; a checkpoint every {layout.every} steps and at epoch ends.",
             f"{len(kills)} SIGKILLs, {saves} of them in the middle of a checkpoint write; "
             "'A -> ckpt S': killed at A, the rerun resumed from the checkpoint of step S "
             "(0: from scratch).",
             f"Wall time {time.time() - start:.0f} s for the reference and the trials."],
            markdown_table(["trial", "kills", "runs", "result"], rows))
        print(f"appended to {args.append}")
    return 0 if equal == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
