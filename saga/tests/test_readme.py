"""saga/README.md quotes the toy project: each snippet must still be in the file it names, line for
line and in order, so the snippets are what the engine's tests run. `...` stands for lines left out."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUOTES = re.findall(r"```python\n# (\S+)\n(.*?)```", (ROOT / "saga" / "README.md").read_text(), re.DOTALL)


def test_the_readme_quotes_each_file_of_the_toy_project():
    assert sorted({path for path, _ in QUOTES}) == [
        "saga/tests/celery.py",
        "saga/tests/settings.py",
        "saga/tests/toyshop/apps.py",
        "saga/tests/toyshop/participant.py",
        "saga/tests/toyshop/saga.py",
        "saga/tests/urls.py",
    ]


@pytest.mark.parametrize(("path", "snippet"), QUOTES, ids=[path for path, _ in QUOTES])
def test_a_snippet_is_in_its_file_as_quoted(path, snippet):
    lines = (ROOT / path).read_text().splitlines()
    position = 0
    for part in snippet.rstrip("\n").split("\n...\n"):
        quoted = part.splitlines()
        starts = [i for i in range(position, len(lines)) if lines[i : i + len(quoted)] == quoted]
        assert starts, f"{path} no longer has these lines (after the ones quoted before them): {quoted}"
        position = starts[0] + len(quoted)
