"""tools/bench_views.py --quick runs and prints a well-formed throughput table."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_bench_views_quick_prints_a_table(tmp_path):
    out = tmp_path / "BENCH.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_views.py"), "--quick", "--output", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [l for l in result.stdout.splitlines() if l.startswith("|")]
    assert lines[0].startswith("| policy | image | batch | host images/s | device images/s")
    assert re.fullmatch(r"\|(---:?\|)+", lines[1])
    rows = lines[2:]
    assert [r.split("|")[1].strip() for r in rows] == ["digits", "cifar"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 7
        host, device, ratio = (float(cells[i].replace(",", "")) for i in (3, 4, 6))
        # Not a float rounding bound: the table prints rounded rates and a 2-decimal ratio.
        assert host > 0 and device > 0 and abs(ratio - device / host) < 0.01 + 0.03 * ratio
    assert not out.exists()  # --quick never writes
