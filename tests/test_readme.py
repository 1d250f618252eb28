"""The README's Python examples run as written."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def python_blocks():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_examples():
    assert python_blocks()


def test_library_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    block = python_blocks()[0]
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["representation"].shape == (256, 64)
    assert namespace["history"].history["top1"][-1] > 0.5
