"""The README's named Python examples (`<!-- block: NAME -->` before a python fence)."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def readme_blocks():
    """{name: code} for every named python block of the README, in order."""
    text = README.read_text()
    found = re.findall(r"<!-- block: ([\w-]+) -->\n```python\n(.*?)```", text, flags=re.S)
    return dict(found)
