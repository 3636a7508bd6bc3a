"""Reporters: pages a run writes about itself (the cohort report is the built-in one).

A reporter renders one file of the run directory from what the run wrote
(``RunFiles``); tumorboard chooses the path (``RUN_DIR/<output>``), writes it
atomically and records it in the manifest, so a reporter can neither write
outside its run nor replace the run's own files. A reporter that fails never
costs the run: its computation is saved first, and ``tumorboard report
RUN_DIR`` redraws every page later.
"""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from .errors import RunError
from .rundir import atomic_write, atomic_write_text, update_manifest
from .runfiles import RunFiles

OUTPUT = re.compile(r"^[a-z0-9][a-z0-9_.-]*\.(html|md|txt|json|pdf|svg)$")
# files the engine itself writes: a reporter owning one could replace the run's evidence
RESERVED = {"metrics.json", "provenance.json", "resolved.json", "manifest.json", "spec.toml", "predictions.parquet",
            "presence.parquet", "card-key.txt", "feature_labels.json"}


class Reporter(ABC):
    """A page about a run, rendered from its run directory.

    Subclasses set ``name`` (``report.something``) and ``output`` (the file
    name inside the run directory, e.g. ``report.html``), and implement
    ``render``. ``requires`` and ``install`` work as for components: a
    reporter whose library is missing is listed as unavailable and skipped.
    """

    name: ClassVar[str] = ""
    output: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    install: ClassVar[str] = ""

    @abstractmethod
    def render(self, run: RunFiles) -> str | bytes:
        """The page's content (text is written as UTF-8). Read the run through ``run`` only."""


def reporter_problems(cls: object) -> list[str]:
    """Why a class cannot be registered as a reporter (empty when it can)."""
    label = getattr(cls, "__qualname__", repr(cls))
    if not (inspect.isclass(cls) and issubclass(cls, Reporter)):
        return [f"{label} is not a subclass of tumorboard.api.Reporter"]
    problems = []
    if not re.fullmatch(r"report\.[a-z][a-z0-9_]*", cls.name or ""):
        problems.append(f"{label}.name = {cls.name!r}: reporter names are 'report.variant' (lower case)")
    if not OUTPUT.match(cls.output or "") or cls.output in RESERVED:
        problems.append(f"{label}.output = {cls.output!r}: a plain file name in the run directory (e.g. "
                        "'report.html'), not one of the run's own files")
    if inspect.isabstract(cls):
        problems.append(f"{label} does not implement render")
    return problems


def write_reports(folder: Path, reporters: dict[str, type[Reporter]], finished: bool,
                  only: str | None = None) -> tuple[list[Path], list[str]]:
    """Render each reporter into ``folder``; returns (written paths, problems). ``finished`` runs are checked
    against their manifest first and the manifest records each new page; a run still being staged is not."""
    written, problems = [], []
    chosen = {n: c for n, c in reporters.items() if only in (None, n)}
    if only is not None and not chosen:
        raise RunError(f"no reporter {only!r}; installed: {', '.join(sorted(reporters)) or '(none)'}")
    outputs = [cls.output for cls in chosen.values()]
    run = RunFiles(folder, verify=finished, redrawn=tuple(outputs))
    for name, cls in sorted(chosen.items()):
        try:
            content = cls().render(run)
            target = Path(folder) / cls.output
            if isinstance(content, bytes):
                atomic_write(target, lambda tmp, data=content: tmp.write_bytes(data))
            else:
                atomic_write_text(target, content)
        except Exception as err:  # any figure or text error: keep the run, say how to retry
            problems.append(f"{name} could not be drawn ({type(err).__name__}: {err}); the metrics, predictions and "
                            f"pipeline are saved: retry with `tumorboard report {folder} --only {name}`")
            continue
        if finished:
            update_manifest(Path(folder), cls.output)
        written.append(target)
    return written, problems


__all__ = ["Reporter", "reporter_problems", "write_reports"]
