"""Run an edited copy of an example spec, as a lab would edit one line, through the engine."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import tomli_w

from tumorboard._engine.engine import RunResult, run

HERE = Path(__file__).resolve().parent


def run_variant(spec_name: str, raw: dict[str, Any]) -> tuple[RunResult, float]:
    """Run ``raw`` (an edited example spec) into a temporary folder: (result, seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw["run"]["output"] = str(Path(tmp) / "run")
        # the spec must sit beside the data: relative paths resolve against its folder
        spec = HERE / f".bench-{spec_name}"
        spec.write_text(tomli_w.dumps(raw), encoding="utf-8")
        try:
            start = time.perf_counter()
            result = run(spec)
            return result, time.perf_counter() - start
        finally:
            spec.unlink()
