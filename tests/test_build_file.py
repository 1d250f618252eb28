"""BUILD stays in step with the tree: every module, test and tool has a target."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _build_text():
    return (ROOT / "BUILD").read_text()


def _listed_files(text):
    return set(re.findall(r'"([\w./-]+\.py)"', text))


def test_every_python_file_has_a_target():
    listed = _listed_files(_build_text())
    for folder in ("supcon_tf", "configs", "tests", "tools"):
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(ROOT).as_posix()
            assert rel in listed, f"{rel} is not covered by a BUILD target; run tools/update_build.py"


def test_every_listed_file_exists():
    for rel in _listed_files(_build_text()):
        assert (ROOT / rel).exists(), f"BUILD names {rel}, which does not exist"


def test_each_test_file_is_its_own_py_test():
    text = _build_text()
    for path in (ROOT / "tests").glob("test_*.py"):
        assert f'name = "{path.stem}"' in text and f'"tests/{path.name}"' in text


def test_build_parses_as_starlark_subset():
    # Starlark's syntax here is a subset of Python's: a typo fails this parse.
    tree = ast.parse(_build_text())
    calls = [n.value.func.id for n in tree.body if isinstance(n, ast.Expr)
             and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Name)]
    assert {"py_library", "py_test", "py_binary"} <= set(calls)
