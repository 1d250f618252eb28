"""SwAV preemption: a run killed with SIGKILL and rerun with the same command ends with
exactly the weights of an uninterrupted run, prototypes, step count and queues included."""

import os
import random

import numpy as np

from _cli_runs import assert_same_final_checkpoint, latest_checkpoint, run_cli

# digits_swav:local, 2 epochs of 5 steps: prototypes frozen for 4 steps, a queue of 2
# batches used from step 4, a checkpoint every 2 steps; deterministic ops and data.
PRETRAIN = ["--config=configs/digits_swav.py:local", "--mode=pretrain",
            "--config.pretrain.epochs=2", "--config.eval.plots=False",
            "--config.checkpoint_every_steps=2", "--config.deterministic=True",
            "--config.method_kwargs.freeze_prototypes_steps=4",
            "--config.method_kwargs.queue_size=512", "--config.method_kwargs.queue_start_steps=3"]
TOTAL_STEPS = 10


def test_swav_sigkill_then_rerun_equals_uninterrupted_run(tmp_path):
    reference, interrupted = str(tmp_path / "reference"), str(tmp_path / "interrupted")
    kill_at = random.Random(os.getpid()).randint(3, TOTAL_STEPS - 2)
    status, out = run_cli(PRETRAIN + [f"--workdir={interrupted}"],
                          SUPCON_TF_FAULT=f"kill_at_step={kill_at}")
    assert status == -9, f"kill_at_step={kill_at}: expected SIGKILL, got {status}\n{out}"
    marker, _ = latest_checkpoint(interrupted)
    assert 0 < marker["step"] <= kill_at, (kill_at, marker)

    status, out = run_cli(PRETRAIN + [f"--workdir={reference}"])
    assert status == 0, out
    status, out = run_cli(PRETRAIN + [f"--workdir={interrupted}"])
    assert status == 0, out
    assert f"resuming from the checkpoint of step {marker['step']}" in out

    ref_arrays = assert_same_final_checkpoint(reference, interrupted, TOTAL_STEPS,
                                              f"kill_at_step={kill_at}")
    # The checkpoint holds SwAV's state: 2 queues of 512 x 8 (full after 2 steps), the
    # step count, the 10 prototypes.
    shapes = [a.shape for a in ref_arrays]
    assert shapes.count((512, 8)) == 2 and (8, 10) in shapes
    queues = [a for a in ref_arrays if a.shape == (512, 8)]
    assert all(np.abs(q).sum(axis=1).min() > 0 for q in queues)
    assert any(a.shape == () and a.dtype.kind == "i" and a == TOTAL_STEPS for a in ref_arrays)
