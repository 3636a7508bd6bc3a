"""The run directory, written atomically: staged beside its target, renamed when complete.

A crash, an error or Ctrl-C removes the staging folder, so a folder at the
output path is always a finished run. (A hard kill can leave the hidden
``.NAME.incomplete-*`` staging folder; its name says what it is.)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import RunError


def check_output_free(output: Path, overwrite: bool) -> None:
    if output.exists() and not overwrite:
        raise RunError(
            f"output folder already exists: {output}\n"
            "pass --overwrite to replace it, or set run.output to a new folder"
        )


@contextmanager
def staged_directory(output: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty staging folder that becomes ``output`` only if the block succeeds."""
    check_output_free(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.parent / f".{output.name}.incomplete-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if output.exists():
        # move the old run aside first so the swap never leaves no run at all
        old = output.parent / f".{output.name}.replaced-{uuid.uuid4().hex[:8]}"
        output.rename(old)
        staging.rename(output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(output)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_inputs(paths: list[Path]) -> dict[str, str]:
    """SHA-256 of every input file (every file inside a folder input)."""
    hashes: dict[str, str] = {}
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                hashes[str(file)] = sha256_of(file)
        elif path.is_file():
            hashes[str(path)] = sha256_of(path)
    return hashes
