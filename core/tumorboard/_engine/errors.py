"""Errors and warnings a person can act on: each names the file, row or field and the fix."""

from __future__ import annotations

from dataclasses import dataclass


class TumorboardError(Exception):
    """Base of every error tumorboard raises on purpose (the CLI prints these without a traceback)."""


class DataError(TumorboardError, ValueError):
    """An input file or table is unusable; the message names the file, row or column."""


class ComponentError(TumorboardError, ValueError):
    """A component was given input it cannot work with (wrong shape, wrong task, ...)."""


class RunError(TumorboardError):
    """A run cannot start or finish (output folder exists, a component crashed, ...)."""


class TumorboardWarning(UserWarning):
    """Something a person should know about a run that does not stop it."""


@dataclass(frozen=True)
class Problem:
    """One problem in a run spec, located as precisely as we can."""

    path: str
    message: str
    line: int | None = None
    value: object = None
    has_value: bool = False

    def render(self, file_label: str) -> str:
        where = f"{file_label}:{self.line}" if self.line else file_label
        head = f"{self.path} = {self.value!r}" if self.has_value else self.path
        lines = self.message.splitlines() or [""]
        pad = " " * (len(where) + 4)
        body = "\n".join(pad + m for m in lines)
        return f"  {where}  {head}\n{body}" if head else f"  {where}  {lines[0]}"


class SpecError(TumorboardError):
    """A run spec that cannot be used; carries every problem found in one pass."""

    def __init__(self, file_label: str, problems: list[Problem]):
        self.file_label = file_label
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        noun = "problem" if n == 1 else "problems"
        lines = [f"{n} {noun} in {self.file_label}"]
        lines += [p.render(self.file_label) for p in self.problems]
        return "\n".join(lines)
