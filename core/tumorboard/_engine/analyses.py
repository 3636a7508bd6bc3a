"""Analyses: work a plugin runs inside the engine on the run's own folds, configured by a spec section it
owns (therapy selection's ``[treatment]`` is the built-in one).

The kernel knows no analysis: it finds the plugin that owns a top-level spec
table, validates the table with that plugin's ``Options``, lets the plugin
check the rest (``check``), then hands it each fold's fitted features and
the refit's, and saves what ``finish`` returns under the section's name in
metrics.json. Every fit an analysis makes sees only the training patients of
the fold it is given.
"""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from .components import Model, _paths_in
from .data import Cohort, FeatureBlock
from .errors import TumorboardWarning

Features = Callable[[Sequence[str]], FeatureBlock]


@dataclass
class AnalysisContext:
    """What the engine gives an analysis: the cohort, the run's (unfitted) model, the seed, where relative paths
    resolve, the evaluation settings, and how to build a model a section names."""

    cohort: Cohort
    outcomes: Path
    id_column: str
    model: Model
    seed: int
    base_dir: Path
    confidence: float
    bootstrap: int
    build_model: Callable[[Any], Model]
    notes: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """A warning of the run (shown after it and saved in metrics.json)."""
        import warnings

        warnings.warn(message, TumorboardWarning, stacklevel=2)
        if message not in self.notes:
            self.notes.append(message)

    def resolve(self, path: Path | None) -> Path | None:
        """A path of the section, relative to the spec's folder."""
        return path if path is None or Path(path).is_absolute() else (self.base_dir / path).resolve()


class SectionChecker:
    """Collects an analysis's problems with its section, each with the key path inside the section."""

    def __init__(self, task: str, check_model: Callable[[Any, tuple, str | None], str | None],
                 resolve: Callable[[Path], Path], check_files: bool):
        self.task, self._check_model, self._resolve, self.check_files = task, check_model, resolve, check_files
        self.problems: list[tuple[tuple, str]] = []

    def problem(self, loc: tuple, message: str) -> None:
        self.problems.append((loc, message))

    def model(self, spec: Any, loc: tuple, needs_task: str | None = None) -> None:
        """A ``ComponentSpec`` naming a model: installed, valid options, able to do ``needs_task``."""
        message = self._check_model(spec, loc, needs_task)
        if message:
            self.problem(loc, message)

    def file(self, path: Path | None, loc: tuple) -> None:
        if path is not None and self.check_files and not self._resolve(path).exists():
            self.problem(loc, f"file not found: {self._resolve(path)}")


class Analysis(ABC):
    """An analysis on the run's folds, owning one top-level spec section.

    Subclasses set ``section`` (the table name, e.g. ``"treatment"``),
    ``Options`` (the pydantic model that validates it; derive from
    ``tumorboard.api.Options``), ``tasks`` (the run tasks it supports), and
    implement ``fold`` and ``finish``.
    """

    section: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]]
    tasks: ClassVar[frozenset[str]] = frozenset()
    requires: ClassVar[tuple[str, ...]] = ()
    install: ClassVar[str] = ""

    def __init__(self, options: BaseModel, context: AnalysisContext) -> None:
        self.options, self.context = options, context

    @classmethod
    def check(cls, options: BaseModel, checker: SectionChecker) -> None:
        """Problems a valid ``Options`` cannot see (a model the section names, a file); before anything runs."""

    def input_files(self) -> list[Path]:
        """Files the analysis reads (hashed into provenance); defaults to the path options, resolved."""
        return [self.context.resolve(p) for p in _paths_in(self.options)]  # type: ignore[misc]

    @abstractmethod
    def fold(self, features: Features, train: np.ndarray, test: np.ndarray, label: str) -> None:
        """One outer fold: fit on the ``train`` rows of the cohort, predict the ``test`` rows.
        ``features(ids)`` gives the fold's fitted fused features (fitted on its training patients only)."""

    @abstractmethod
    def finish(self, features: Features, folder: Path, ids: list[str]) -> dict[str, Any]:
        """After the folds: score, refit on everyone (``features`` is the refit's), write files into ``folder``
        (``RUN_DIR/<section>/``); returns what metrics.json keeps under the section's name."""


def analysis_problems(cls: object) -> list[str]:
    label = getattr(cls, "__qualname__", repr(cls))
    if not (inspect.isclass(cls) and issubclass(cls, Analysis)):
        return [f"{label} is not a subclass of tumorboard.api.Analysis"]
    problems = []
    if not re.fullmatch(r"[a-z][a-z0-9_]*", cls.section or ""):
        problems.append(f"{label}.section = {cls.section!r}: a lower-case table name")
    options = getattr(cls, "Options", None)
    if not (inspect.isclass(options) and issubclass(options, BaseModel)) or options.model_config.get("extra") != "forbid":
        problems.append(f"{label}.Options must derive from tumorboard.api.Options (unknown keys are errors)")
    if not cls.tasks:
        problems.append(f"{label}.tasks is empty: name the run tasks it supports")
    if inspect.isabstract(cls):
        problems.append(f"{label} does not implement {', '.join(sorted(cls.__abstractmethods__))}")
    return problems


__all__ = ["Analysis", "AnalysisContext", "SectionChecker", "analysis_problems"]
