"""What a plugin's commands receive from tumorboard (``register_commands``), and the hook's call."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import SpecError, TumorboardError, TumorboardWarning


@dataclass
class CommandKit:
    """The pieces of the ``tumorboard`` program a plugin's command uses.

    ``out`` prints results, ``err`` progress and problems (rich consoles).
    A command stops with :meth:`fail` on a ``TumorboardError`` so the user
    sees one clean line and the usual exit code, never a traceback.
    """

    out: Console = field(default_factory=Console)
    err: Console = field(default_factory=lambda: Console(stderr=True))

    def fail(self, error: BaseException) -> NoReturn:
        """Print ``error`` as tumorboard prints errors and exit (2 for a spec problem, else 1)."""
        if isinstance(error, SpecError):
            self.err.print(f"[red]error:[/red] {escape(error.render())}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        self.err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)

    def warn(self, note: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {escape(note)}", highlight=False, soft_wrap=True)

    def run_spec(self, spec: Path, overwrite: bool = False, quiet: bool = False, plugins: list[str] | None = None,
                 backend: str | None = None, workers: int | None = None) -> Any:
        """Run a spec as ``tumorboard run`` does (progress, warnings); returns the run's result
        (``.path``, ``.metrics``, ``.warnings``). Raises ``TumorboardError`` for the command to ``fail`` with."""
        from .engine import run as run_loaded
        from .spec import load_spec

        loaded = load_spec(spec, plugins or [])
        if not quiet:
            line = loaded.registry.summary_line()
            if line:
                self.err.print(f"[yellow]plugins:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
        progress = None if quiet else self._progress()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TumorboardWarning)  # shown from the result instead
            result = run_loaded(loaded, overwrite=overwrite, progress=progress, backend=backend, workers=workers)
        if not quiet:
            for note in result.warnings:
                self.warn(note)
        return result

    def _progress(self) -> Any:
        from .cli import LogProgress, RichProgress

        return RichProgress(self.err) if self.err.is_terminal else LogProgress(self.err)

    def metrics_table(self, metrics: dict[str, Any], title: str = "out-of-sample metrics") -> Table:
        """A run's metrics with their confidence intervals, as ``tumorboard run`` prints them."""
        from .cli import metrics_table

        return metrics_table(metrics, title)

    def verify_folder(self, folder: Path, what: str = "run") -> dict[str, Any]:
        """Check that ``folder`` is a finished tumorboard run (or ``what="synthetic cohort"``) whose files
        match its manifest; returns the manifest, raises ``TumorboardError`` naming what is wrong."""
        from .rundir import verify_run

        return verify_run(folder, what=what)


def install_commands(app: typer.Typer, registry: Any, kit: CommandKit) -> list[str]:
    """Call every loaded plugin's ``register_commands``; returns problems (a plugin whose hook raised, or
    that took a command name already in use) for the program to print. One plugin's failure never stops
    the others or the built-in commands."""
    problems = []
    for info, function in registry.feature_hooks.get("register_commands", []):
        taken = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
        taken |= {g.name for g in app.registered_groups}
        before = len(app.registered_commands), len(app.registered_groups)
        try:
            function(**{k: v for k, v in {"app": app, "kit": kit}.items() if k in _argnames(function)})
        except Exception as err:  # a broken plugin is reported, never fatal
            del app.registered_commands[before[0]:], app.registered_groups[before[1]:]
            problems.append(f"plugin {info.name!r} could not add its commands: {type(err).__name__}: {err}")
            continue
        added = app.registered_commands[before[0]:]
        clash = [c for c in added if (c.name or c.callback.__name__.replace("_", "-")) in taken]
        if clash:
            for command in clash:
                app.registered_commands.remove(command)
            names = ", ".join(repr(c.name or c.callback.__name__) for c in clash)
            problems.append(f"plugin {info.name!r} ({info.distribution or info.module}) adds {names}, a command "
                            "name already in use; it was not added")
    return problems


def _argnames(function: Any) -> set[str]:
    import inspect

    return set(inspect.signature(function).parameters)


__all__ = ["CommandKit", "TumorboardError", "install_commands"]
