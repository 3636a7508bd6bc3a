"""The tutorials' code runs as written: every block, in order, in a fresh folder.

A fence with a title (```python title="wearable.py"```) is a file the reader
saves; an untitled Python fence runs; a bash fence may hold only `tumorboard`
commands, which run as `python -m tumorboard` (a tutorial that needs another
command cannot be checked here, so it is refused).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

FENCE = re.compile(r'^```(\w+)(?:\s+title="([^"]+)")?\n(.*?)^```', re.MULTILINE | re.DOTALL)
TUTORIALS = sorted((REPO / "docs" / "tutorials").glob("*.md"))


def blocks(path: Path) -> list[tuple[str, str | None, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in FENCE.finditer(path.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("tutorial", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_code_runs(tutorial, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__tutorial__"}
    ran = 0
    for language, title, code in blocks(tutorial):
        if title:
            (tmp_path / title).write_text(code, encoding="utf-8")
        elif language == "python":
            exec(compile(code, f"{tutorial.name}", "exec"), namespace)  # noqa: S102 - our own docs
            ran += 1
        elif language == "bash":
            for line in filter(None, (line.strip() for line in code.splitlines())):
                words = shlex.split(line.split("#")[0])
                assert words[0] == "tumorboard", f"{tutorial.name}: cannot check the command {line!r}"
                result = subprocess.run([sys.executable, "-m", "tumorboard", *words[1:]], capture_output=True,
                                        text=True, encoding="utf-8", env={**os.environ, "COLUMNS": "200"})
                assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
                ran += 1
    assert ran >= 3, f"{tutorial.name} has too little code to be a tutorial"


def test_there_are_a_modality_and_a_model_tutorial():
    assert {p.stem for p in TUTORIALS} >= {"write-a-modality", "write-a-model"}
