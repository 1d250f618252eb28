"""The benchmark tools run in CI-size settings (`--quick`) and print well-formed tables.

These check the tables' shape and consistency, never speed.
"""

import decimal
import importlib.util
import math
import os
import subprocess
import sys

import pytest

from loss_reference import loss_terms
from tolerance import assert_close

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, TOOLS)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(TOOLS)
    return module


def run_tool(name, *args, tmp_path):
    """Runs `tools/<name>.py --quick ARGS --append FILE`; returns (table rows, appended text)."""
    out = tmp_path / f"{name}.md"
    env = dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, os.path.join(TOOLS, f"{name}.py"), "--quick", *args,
         "--append", str(out)], capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return parse_table(result.stdout), out.read_text()


def printed(cell):
    """The interval of values that print as `cell` (a number rounded to its decimals)."""
    value = decimal.Decimal(cell)
    half = decimal.Decimal(1).scaleb(value.as_tuple().exponent) / 2
    return float(value - half), float(value + half)


def assert_printed_ratio(ratio_cell, numerator_cell, denominator_cell):
    """A ratio printed from two unrounded values, which print as the two other cells: the
    relation holds for some values in the intervals the three cells stand for."""
    ratio, num, den = printed(ratio_cell), printed(numerator_cell), printed(denominator_cell)
    assert ratio[0] <= num[1] / den[0] and num[0] / den[1] <= ratio[1], (
        ratio_cell, numerator_cell, denominator_cell)


def parse_table(text):
    """Rows (lists of cells) of the one markdown table in `text`; checks its shape."""
    lines = [l for l in text.splitlines() if l.startswith("|")]
    assert len(lines) >= 3, text
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "").replace("-", "")) == set(), lines[1]
    rows = [[c.strip() for c in l.strip("|").split("|")] for l in lines[2:]]
    assert all(len(r) == len(header) for r in rows), lines
    return [dict(zip(header, r)) for r in rows]


def test_bench_step_quick_table(tmp_path):
    """TensorFlow, no XLA, one round (the rounds' median and spread are checked on
    `combine_runs` and `table` below: another round would only start more workers)."""
    rows, appended = run_tool("bench_step", "--xla", "off", tmp_path=tmp_path)
    implementations = [r["implementation"] for r in rows]
    assert implementations == ["PyTorch eager", "supcon_tf", "bare Keras"]
    for r in rows:
        assert r["model"] == "resnet18_cifar" and r["precision"] == "float32"
    for r in rows[1:]:
        assert r["rounds"] == "1" and r["spread"] == "-"
    package, bare = rows[1], rows[2]
    for r in (package, bare):
        assert float(r["images/s"]) > 0 and float(r["step (s)"]) > 0
        assert r["params"] == package["params"]  # The bare model has the same layers.
    assert package["vs bare Keras"].endswith("x")
    assert_printed_ratio(package["vs bare Keras"][:-1], package["images/s"], bare["images/s"])
    torch_row = rows[0]
    if importlib.util.find_spec("torch") is None:
        assert "PyTorch not installed" in torch_row["images/s"]
        assert package["vs PyTorch eager"] == "n/a"
    else:  # Same layers, head and parameter count as the Keras models.
        assert torch_row["params"] == package["params"]
        assert torch_row["vs PyTorch eager"] == "1.00x"
        assert package["vs PyTorch eager"].endswith("x")
    assert "Train step" in appended and "Command: `python tools/bench_step.py" in appended
    assert "Libraries:" in appended and "Machine:" in appended
    assert "1 round(s)" in appended


def test_bench_step_alternate_on_jax(tmp_path):
    """`--alternate` on the GPU command's backend (JAX, XLA on): the package / bare Keras pair
    in one process, steps alternated. (The table's other rows, on TensorFlow, above: each
    tool run starts its workers, so one run covers each mode and each backend.)"""
    pytest.importorskip("jax")
    rows, appended = run_tool("bench_step", "--backend", "jax", "--alternate", "--steps", "3",
                              tmp_path=tmp_path)
    assert [r["implementation"] for r in rows] == ["supcon_tf", "bare Keras"]
    package, bare = rows
    for r in rows:
        assert r["backend"] == "jax" and r["XLA"] == "on" and r["rounds"] == "1"
        assert float(r["images/s"]) > 0
    assert package["params"] == bare["params"]  # Counted once both models are built.
    assert package["spread"].endswith("%")  # Step to step, from the alternated steps.
    assert package["vs bare Keras"].endswith("x")
    assert_printed_ratio(package["vs bare Keras"][:-1], package["images/s"], bare["images/s"])
    assert "steps alternated" in appended and "--alternate" in appended


def test_bench_step_rounds_take_the_median():
    tool = load_tool("bench_step")
    runs = [{"step_s": s, "images_per_s": 16 / s, "params": 7} for s in (2.0, 1.0, 4.0)]
    row = tool.combine_runs(runs + [{"error": "timed out after 9 s"}])
    assert row["step_s"] == 2.0  # Python floats: a division, a ratio of extremes.
    assert_close(row["images_per_s"], 8.0, dtype="float64", terms=1)
    assert row["rounds"] == 3
    assert_close(row["spread"], 1.5, dtype="float64", terms=3)
    assert tool.combine_runs([{"error": "x"}, {"error": "y"}]) == {"error": "x"}
    single = tool.combine_runs(runs[:1])  # One round: no spread to show.
    assert single["rounds"] == 1 and "spread" not in single
    config = dict(model="m", batch=8, precision="float32", impl="keras", xla=True)
    assert parse_table(tool.table([dict(config, **single)]))[0]["spread"] == "-"
    with pytest.raises(SystemExit):
        tool.main(["--rounds", "0"])


def test_bench_step_skips_emulated_bfloat16_pytorch_on_cpu(monkeypatch):
    tool = load_tool("bench_step")
    monkeypatch.setattr(tool, "cpu_has_bfloat16", lambda: False)
    args = tool.argparse.Namespace(models=["resnet18_cifar"], quick=True, batch=None, steps=1,
                                   warmup=0, precisions=["float32", "bfloat16"], xla=[True],
                                   backend="tensorflow", alternate=False)
    rows = tool.plan(args, gpu=False)
    torch_rows = {r["precision"]: r for r in rows if r["impl"] == "torch"}
    assert "skip" not in torch_rows["float32"]
    assert "no native bfloat16" in torch_rows["bfloat16"]["skip"]
    on_gpu = [r for r in tool.plan(args, gpu=True) if r["impl"].startswith("torch")]
    assert len(on_gpu) == 4 and not any("skip" in r for r in on_gpu)  # Eager and compiled.


def test_bench_step_without_torch_says_so(monkeypatch):
    tool = load_tool("bench_step")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError.
    config = dict(impl="torch", model="resnet18_cifar", precision="float32", xla=None, batch=2)
    result = tool.worker([config])[0]
    assert result == {"error": tool.TORCH_MISSING}
    table = parse_table(tool.table([dict(config, **result)]))
    assert "PyTorch not installed" in table[0]["images/s"]


def test_torch_reference_matches_keras_resnet_parameter_count():
    torch = pytest.importorskip("torch")
    tool = load_tool("bench_step")
    from supcon_tf import encoders
    from supcon_tf.heads import ProjectionHead

    for depth, stem in ((18, "cifar"), (50, "imagenet")):
        encoder = encoders.resnet(depth, stem=stem, width_multiplier=0.125,
                                  input_shape=(32, 32, 3))
        head = ProjectionHead(output_dim=tool.PROJECTION_DIM)
        head.build(encoder.output_shape)
        keras_params = encoder.count_params() - sum(  # BatchNorm moving statistics.
            int(w.shape[0]) for w in encoder.non_trainable_weights) + sum(
            math.prod(w.shape) for w in head.trainable_weights)
        model = tool.torch_model(depth, stem, 0.125)
        assert sum(p.numel() for p in model.parameters()) == keras_params
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, 3, 32, 32))
        assert tuple(out.shape) == (2, tool.PROJECTION_DIM)


def test_torch_supcon_matches_package_loss():
    torch = pytest.importorskip("torch")
    import numpy as np
    from keras import ops

    from supcon_tf.losses import contrastive_loss

    tool = load_tool("bench_step")
    rng = np.random.default_rng(0)
    features = rng.standard_normal((6, 2, 5)).astype("float32")
    features /= np.linalg.norm(features, axis=-1, keepdims=True)
    labels = np.array([0, 1, 0, 2, 1, 0])
    want = float(ops.mean(contrastive_loss(features, labels, temperature=tool.TEMPERATURE)))
    got = float(tool.torch_supcon(torch.tensor(features), torch.tensor(labels)))
    bare = float(ops.mean(tool.keras_supcon(labels, features)))
    # float32 SupCon over 6 samples x 2 views of dim 5, three implementations.
    assert_close(got, want, dtype="float32", terms=loss_terms(6, 2, 5))
    assert_close(bare, want, dtype="float32", terms=loss_terms(6, 2, 5))


def test_bench_loss_quick_table(tmp_path):
    rows, appended = run_tool("bench_loss", tmp_path=tmp_path)
    assert [r["views"] for r in rows] == ["64", "128", "growth exponent (last two sizes)"]
    for r in rows[:2]:
        assert float(r["plain (s)"]) > 0 and float(r["blocked (s)"]) > 0
        assert float(r["plain peak MB"]) >= 0 and float(r["blocked peak MB"]) >= 0
        assert r["same loss"] == "yes"
    float(rows[2]["plain (s)"])  # Growth exponents are numbers.
    assert "Contrastive loss: plain vs blocked" in appended


def test_bench_loss_floor_quick_table(tmp_path, monkeypatch, capsys):
    """`--floor`: the chunked floor pass's value, and a table whose ratios are its times'."""
    import keras
    import numpy as np

    tool = load_tool("bench_loss")
    monkeypatch.setattr(tool, "FLOOR_CHUNK_LOGITS", 64 * 16)  # 4 chunks of 16 rows.
    fn, chunk = tool.floor_pass_fn(64)
    contrast = np.random.default_rng(0).standard_normal((64, 16)).astype("float32")
    contrast /= np.linalg.norm(contrast, axis=1, keepdims=True)
    want = np.exp(contrast.astype("float64") @ contrast.T / tool.TEMPERATURE).sum()
    assert chunk == 16
    # float32 sum of 64 x 64 exponentials; a chunk missing would be ~25% off.
    assert_close(float(fn(contrast)), want, dtype="float32", terms=64 * 64)
    # The worker in this process (no subprocess): one size, one repeat.
    monkeypatch.setattr(tool, "run_worker", lambda script, config, timeout:
                        tool.floor_worker(config))
    out, backend = tmp_path / "bench.md", keras.backend.backend()
    assert tool.main(["--floor", "--quick", "--sizes", "64", "--backend", backend,
                      "--append", str(out)]) == 0
    (row,) = parse_table(capsys.readouterr().out)
    assert row["views"] == "64" and row["same loss"] == "yes"
    # Not float rounding bounds: each cell is rounded for printing, so each holds an
    # interval, and the printed relations must hold for some values in them.
    floor, one_pass = printed(row["floor = 4 passes (s)"]), printed(row["floor pass (s)"])
    assert floor[0] <= 4 * one_pass[1] and 4 * one_pass[0] <= floor[1], row
    for impl in ("blocked", "plain"):
        assert_printed_ratio(row[f"{impl} / floor"], row[f"{impl} (s)"],
                             row["floor = 4 passes (s)"])
    assert 0 <= float(row["system time (blocked)"].rstrip("%")) <= 100
    assert float(row["peak RSS MB"]) > 0 and "->" in row["load avg"]
    assert f"Contrastive loss vs its matmul floor ({backend})" in out.read_text()


def test_bench_epoch_quick_table(tmp_path):
    rows, appended = run_tool("bench_epoch", tmp_path=tmp_path)
    assert [r["augment on"] for r in rows] == ["host", "device"]
    for r in rows:
        assert r["images"] == "64" and r["batch"] == "16"
        assert float(r["epoch (s)"]) > 0 and float(r["compute only (s)"]) > 0
        assert 0 <= float(r["input-wait share"].rstrip("%")) <= 100
    assert "SupCon epoch" in appended


def test_bench_momentum_quick_table(tmp_path):
    rows, appended = run_tool("bench_momentum", "--methods", "simclr,moco,nnclr,dino",
                              tmp_path=tmp_path)
    assert [r["method"] for r in rows] == ["simclr", "moco", "nnclr", "dino", "ema+queue",
                                           "nn+queue"]
    for r in rows:
        assert float(r["step (s)"]) > 0
    assert rows[0]["vs SimCLR"] == "1.00x" and rows[4]["vs SimCLR"].endswith("% of moco")
    assert rows[5]["vs SimCLR"].endswith("% of nnclr")
    assert rows[0]["trainable params"] == rows[1]["trainable params"]  # The teacher is not.
    # NNCLR trains a predictor on top of SimCLR's encoder and head.
    assert int(rows[2]["trainable params"].replace(",", "")) > int(
        rows[0]["trainable params"].replace(",", ""))
    assert "Step cost: moco, nnclr, dino vs SimCLR" in appended


def test_bench_export_quick_table(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    rows, appended = run_tool("bench_export", tmp_path=tmp_path)
    assert [r["runtime"] for r in rows] == ["SavedModel in TensorFlow", "LiteRT interpreter",
                                            "ONNX Runtime"]
    assert [r["file"] for r in rows] == ["saved_model.pb", "model.tflite", "model.onnx"]
    for r in rows:
        assert r["batch"] == "32"
        median, p90 = float(r["median (ms)"]), float(r["p90 (ms)"])
        assert 0 < median <= p90
        # images/s from the unrounded median: within what the printed median's 3 decimals
        # (ms) and the integer images/s allow.
        images_per_s = float(r["images/s"].replace(",", ""))
        assert 32e3 / (median + 5e-4) - 0.5 <= images_per_s <= 32e3 / (median - 5e-4) + 0.5
        # Logits of a 10-class head on a 16-D representation: tests/tolerance.py's bound.
        assert_close(float(r["max abs logit diff vs SavedModel"]), 0.0,
                     terms=3 * 3 * 8 + 8 * 8 + 3 * 16)
    assert rows[0]["max abs logit diff vs SavedModel"] == "0.0e+00"
    assert "## Export latency: SavedModel vs LiteRT vs ONNX Runtime (CPU)" in appended
