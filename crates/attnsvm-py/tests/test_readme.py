"""README's Python example runs as written (so it stays in sync with the package)."""
import re

from conftest import ROOT


def python_blocks():
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_python_example_runs(capsys):
    blocks = python_blocks()
    assert len(blocks) == 1
    exec(compile(blocks[0], "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Solved ")
    assert out[-1].startswith("y: label 2 at index ") and out[-1].endswith(" is not −1 or +1")
