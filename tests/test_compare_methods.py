"""tools/compare_methods.py on fake results: its log parsing, tables and picture (the
runs themselves are the tool's own `--local` variant, not part of the suite)."""

import os
import sys

from png_reference import png_size

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
import compare_methods  # noqa: E402

LOG = """[data] something else
[pretrain] epoch 1/2 step 5/10 loss 6.2 knn_top1 0.5 probe_loss 2.1 probe_top1 0.25 lr 0.01 (4.0s)
[pretrain] epoch 2/2 step 10/10 loss 5.9 knn_top1 0.7 probe_loss 1.9 probe_top1 0.45 lr 0 (1.0s)
[linear] epoch 1/1 step 5/5 loss 2.2 top1 0.1 top5 0.5 lr 0 (1.0s)
"""


def _result(method, seed, offline, knn, online=0.5):
    return {"method": method, "seed": seed, "linear_offline": offline, "linear_online": online,
            "knn_top1": knn, "knn_curve": [knn / 2, knn] if knn else [],
            "finetune_10pct": offline + 0.05, "recall_at_1": (knn or 0.9) - 0.1,
            "wall_s": 10.0 + seed, "steps_per_s": 2.0}


def test_parse_pretrain_log():
    epochs = compare_methods.parse_pretrain_log(LOG)
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[1]["step"] == 10
    assert epochs[1]["knn_top1"] == 0.7 and epochs[1]["probe_top1"] == 0.45
    assert sum(e["seconds"] for e in epochs) == 5.0


def test_table_and_picture(tmp_path):
    results = [_result("supcon", 0, 0.90, 0.80), _result("supcon", 1, 0.94, 0.84),
               _result("ce", 0, 0.96, None, online=None)]
    text = compare_methods.write_table(results, tmp_path / "table.md")
    lines = text.splitlines()
    assert lines[0].startswith("| method | seeds | linear top-1 online")
    # mean 92.0, sample std of (90, 94) = 2.83; kNN 82.0 ± 2.8; one seed: ± 0.0
    assert lines[2].startswith("| supcon | 2 | 50.0 ± 0.0 | 92.0 ± 2.8 | 82.0 ± 2.8 | "
                               "97.0 ± 2.8 | 72.0 ± 2.8 | 10.5 ± 0.7 | 2.00 ± 0.00 |")
    assert lines[3].startswith("| ce | 1 | — | 96.0 ± 0.0 | — |")
    assert (tmp_path / "table.md").read_text() == text
    width, height = png_size(compare_methods.plot(results, tmp_path / "comparison.png"))
    assert (width, height) == (1200, 900)
    fine = compare_methods.write_finetune_table(
        [0.01, 0.1], {"supcon": {0.01: 0.5, 0.1: 0.9}, "scratch": {0.01: 0.2, 0.1: 0.6}},
        {"supcon": 0.92}, tmp_path / "finetune.md")
    assert fine.splitlines()[2] == "| supcon | 50.0 | 90.0 | 92.0 |"
    assert fine.splitlines()[3] == "| scratch | 20.0 | 60.0 | — |"


def test_merge_of_outputs_split_over_processes(tmp_path):
    import json

    for name, method, scratch in (("a", "supcon", True), ("b", "simclr", False)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps([_result(method, 0, 0.9, 0.8)]))
        scores = {method: {"0.1": 0.7}} | ({"cross-entropy from scratch": {"0.1": 0.4}}
                                           if scratch else {})
        (tmp_path / name / "finetune.json").write_text(json.dumps({"fractions": [0.1],
                                                                   "scores": scores}))
    compare_methods.main(["--merge", f"{tmp_path / 'a'},{tmp_path / 'b'}",
                          "--out", str(tmp_path / "all")])
    rows = (tmp_path / "all" / "finetune.md").read_text().splitlines()[2:]
    assert rows == ["| supcon | 70.0 | 90.0 |", "| simclr | 70.0 | 90.0 |",
                    "| cross-entropy from scratch | 40.0 | — |"]
    assert (tmp_path / "all" / "table.md").read_text().count("| 1 |") == 2
