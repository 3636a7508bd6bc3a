"""The ``tumorboard`` command: parses arguments, calls the library, prints with rich."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import SpecError, TumorboardError, TumorboardWarning

app = typer.Typer(
    name="tumorboard",
    help="Personalized cancer analytics: run specs, inspect plugins, explain predictions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
spec_app = typer.Typer(help="Check run specs and print their JSON Schema.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")

out = Console()
err = Console(stderr=True)

PluginOpt = Annotated[
    list[str] | None,
    typer.Option("--plugin", "-p", help="Load a local plugin: a module name, or a path to a .py file or package "
                 "folder (loaded by location); repeatable."),
]


class RichProgress:
    """Draws the engine's progress: a bar over folds and stages, with the current step."""

    def __init__(self, console: Console):
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=False,
        )
        self.task = None

    def begin(self, total: int, description: str) -> None:
        self.bar.start()
        self.task = self.bar.add_task(description, total=total)

    def update(self, description: str) -> None:
        self.bar.update(self.task, description=description)

    def advance(self) -> None:
        self.bar.advance(self.task)

    def end(self) -> None:
        self.bar.update(self.task, description="done")
        self.bar.stop()


class LogProgress:
    """Progress for logs (stderr is not a terminal): one line per finished stage, with its duration."""

    def __init__(self, console: Console):
        self.console = console

    def begin(self, total: int, description: str) -> None: ...
    def update(self, description: str) -> None: ...
    def advance(self) -> None: ...
    def end(self) -> None: ...

    def stage(self, name: str, seconds: float) -> None:
        self.console.print(f"[tumorboard] {name}: {seconds:.2f} s", highlight=False, markup=False, soft_wrap=True)


def _fail(error: BaseException) -> None:
    if isinstance(error, SpecError):
        err.print(f"[red]error:[/red] {escape(error.render())}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _plugin_summary(registry) -> None:
    """One line when some installed plugin is broken, empty or in conflict (details: `tumorboard plugins`)."""
    line = registry.summary_line()
    if line:
        err.print(f"[yellow]plugins:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)


def _show_warnings(notes: list[str]) -> None:
    for note in notes:
        err.print(f"[yellow]warning:[/yellow] {escape(note)}", highlight=False, soft_wrap=True)


def metrics_table(metrics: dict[str, Any], title: str = "out-of-sample metrics") -> Table:
    confidence = metrics.get("confidence", 0.95)
    table = Table(title=f"{title} (n = {metrics.get('n', '?')})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(f"{int(confidence * 100)}% CI", justify="right")
    for name, est in metrics["overall"].items():
        value = "n/a" if est["value"] is None else f"{est['value']:.3f}"
        ci = "n/a" if est["ci_low"] is None else f"{est['ci_low']:.3f} – {est['ci_high']:.3f}"
        table.add_row(name, value, ci)
    return table


def ablation_table(metrics: dict[str, Any]) -> Table:
    """Each modality subset's primary metric and the full model's paired gain over it."""
    ab = metrics["ablation"]
    m = ab["primary_metric"]
    table = Table(title=f"ablation: {m} of each modality subset, and the gain of all modalities over it")
    for column, justify in (("modalities", "left"), (m, "right"), ("gain of all (95% CI)", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]

    def fmt(est: dict[str, Any], signed: bool = False) -> str:
        if est["value"] is None:
            return "n/a"
        value = f"{est['value']:+.3f}" if signed else f"{est['value']:.3f}"
        return value if est["ci_low"] is None else f"{value} ({est['ci_low']:+.3f} – {est['ci_high']:+.3f})" if signed \
            else f"{value} ({est['ci_low']:.3f} – {est['ci_high']:.3f})"

    table.add_row("all", fmt(metrics["overall"][m]), "")
    for label, entry in ab["subsets"].items():
        best = " (best single)" if label == ab["best_single"] else ""
        table.add_row(label + best, fmt(entry["metrics"][m]), fmt(entry["gain"][m], signed=True))
    return table


def _run(spec: Path, overwrite: bool, quiet: bool, plugins: list[str], backend: str | None = None,
         workers: int | None = None) -> Any:
    from .engine import run as run_spec
    from .spec import load_spec

    loaded = load_spec(spec, plugins)
    if not quiet:
        _plugin_summary(loaded.registry)
    progress = None if quiet else (RichProgress(err) if err.is_terminal else LogProgress(err))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TumorboardWarning)  # shown from the result instead
        result = run_spec(loaded, overwrite=overwrite, progress=progress, backend=backend, workers=workers)
    if not quiet:
        _show_warnings(result.warnings)
    return result


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="Run spec (TOML).")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or warnings; only the run folder.")] = False,
    plugin: PluginOpt = None,
    backend: Annotated[str | None, typer.Option(
        "--backend", help="local or ray: overrides [execution] backend.")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Parallel workers: overrides [execution] workers (1: all in this process).")] = None,
) -> None:
    """Run a spec: cross-validate, refit, explain, and write the run directory."""
    try:
        result = _run(spec, overwrite, quiet, plugin or [], backend, workers)
    except KeyboardInterrupt:
        err.print("[red]interrupted:[/red] no run directory was written")
        raise typer.Exit(130) from None
    except TumorboardError as error:
        _fail(error)
    if not quiet:
        out.print(metrics_table(result.metrics))
        if "ablation" in result.metrics:
            out.print(ablation_table(result.metrics))
    out.print(f"run directory: {result.path}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `tumorboard run`.")],
    only: Annotated[str | None, typer.Option("--only", help="Redraw one reporter's page (e.g. report.cohort).")] = None,
    plugin: PluginOpt = None,
) -> None:
    """Redraw a run's pages (the cohort report, RUN_DIR/report.html, and any other reporter's) from what the run
    wrote."""
    from .plugins import load_plugins, split_command_line_plugins
    from .reporters import write_reports

    registry = load_plugins(*split_command_line_plugins(plugin or []))
    if not registry.reporters:
        missing = "; ".join(f"{n} {why}" for n, why in registry.unavailable_reporters.items())
        _fail(TumorboardError("no reporter is installed" + (f" ({missing})" if missing else "")))
    try:
        written, problems = write_reports(run_dir, registry.reporters, finished=True, only=only)
    except TumorboardError as error:
        _fail(error)
    _show_warnings(problems)
    for path in written:
        out.print(f"written: {path}")
    if problems:
        raise typer.Exit(1)


plugins_app = typer.Typer(help="List plugins (installed, unavailable here, known, broken) or start a new one.")
app.add_typer(plugins_app, name="plugins")


registry_app = typer.Typer(help="The plugin directory (registry.toml): check an entry before a pull request.",
                            no_args_is_help=True)
app.add_typer(registry_app, name="registry")


@registry_app.command("check")
def registry_check(
    key: Annotated[str, typer.Argument(help="The table's key: [plugins.KEY].")],
    registry_file: Annotated[Path | None, typer.Option("--file", help="A registry file holding the table (default: "
                                                       "the bundled one plus your user registry).")] = None,
) -> None:
    """Verify a registry table against the installed distribution: entry point, components, kinds, commands."""
    from .catalogue import check_entry, load_catalogue

    try:
        entries = {e.key: e for e in load_catalogue(registry_file)}
    except TumorboardError as error:
        _fail(error)
    if key not in entries:
        _fail(TumorboardError(f"no table [plugins.{key}] in {registry_file or 'the registry'}; keys: "
                              f"{', '.join(sorted(entries)) or '(none)'}"))
    problems = check_entry(entries[key])
    if problems:
        for problem in problems:
            err.print(f"[red]✗[/red] {escape(problem)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    entry = entries[key]
    out.print(f"[plugins.{key}] matches {entry.distribution}: {entry.entry_point}; "
              f"{', '.join(entry.components or entry.commands)}", highlight=False, markup=False)


@plugins_app.command("new")
def plugins_new(
    name: Annotated[str, typer.Argument(help="The plugin's name: lower case, e.g. ridge (package tumorboard_ridge).")],
    kind: Annotated[str, typer.Option("--kind", help="model, modality, fusion or explainer.")],
    folder: Annotated[Path, typer.Option("--dir", help="Where to create tumorboard-NAME/.")] = Path("."),
) -> None:
    """Write a plugin package (pyproject with the entry point, the component, a kit test, a README) that passes
    its own tests after `pip install -e`."""
    from .scaffold import new_plugin

    try:
        root = new_plugin(kind, name, folder)
    except TumorboardError as error:
        _fail(error)
    out.print(f"plugin package written to {root}/\nnext: cd {root} && pip install -e \".[test]\" && python -m pytest -q",
              highlight=False, markup=False)


@plugins_app.callback(invoke_without_command=True)
def plugins(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    plugin: PluginOpt = None,
) -> None:
    """List installed, unavailable (an optional dependency is missing), catalogued-but-not-installed, and broken
    plugins."""
    if ctx.invoked_subcommand is not None:
        return
    from .catalogue import load_catalogue
    from .plugins import load_plugins, split_command_line_plugins, unavailable_here

    registry = load_plugins(*split_command_line_plugins(plugin or []))
    catalogue = load_catalogue()
    unavailable = unavailable_here(registry, catalogue)
    installed_eps = {(p.name, p.module) for p in registry.plugins if p.source == "entry point"}
    missing = [e for e in catalogue if (e.entry_point_name, e.entry_point_module) not in installed_eps]
    if as_json:
        data = {
            "installed": [p.as_dict() for p in registry.plugins if p.status == "ok"],
            "broken": [p.as_dict() for p in registry.plugins if p.status == "broken"],
            "disabled": [p.as_dict() for p in registry.plugins if p.status == "disabled"],
            "empty": [p.as_dict() for p in registry.plugins if p.status == "empty"],
            "unavailable": unavailable,
            "conflicts": {name: [{"plugin": p.name, "distribution": p.distribution, "pin": p.owner_label}
                                 for p in claimants] for name, claimants in registry.conflicts.items()},
            "not_installed": [
                {"name": e.key, "kind": e.kind, "distribution": e.distribution, "components": list(e.components),
                 "summary": e.summary, "install": e.install, "homepage": e.homepage}
                for e in missing
            ],
            "components": {family: registry.names(family) for family in registry.components},
        }
        out.print_json(json.dumps(data))
        return
    table = Table(title="installed plugins")
    for col in ("plugin", "distribution", "version", "source", "hooks", "components"):
        table.add_column(col)
    for p in registry.plugins:
        if p.status == "ok":
            table.add_row(p.name, p.distribution or "-", p.version or "-", p.source,
                          ", ".join(p.hooks), ", ".join(p.components))
    out.print(table)
    if unavailable:
        light = Table(title="installed but unavailable here: an optional dependency is missing")
        for col in ("plugin", "components", "needs", "install"):
            light.add_column(col)
        for row in unavailable:
            light.add_row(*(escape(str(v)) for v in (row["plugin"], ", ".join(row["components"]), row["reason"], row["install"])))
        out.print(light)
    if any(p.status not in ("ok", "unavailable") for p in registry.plugins):
        bad = Table(title="broken, empty or disabled plugins")
        for col in ("plugin", "distribution", "status", "reason"):
            bad.add_column(col)
        for p in registry.plugins:
            if p.status not in ("ok", "unavailable"):
                bad.add_row(p.name, p.distribution or "-", p.status, escape(p.error or ""))
        out.print(bad)
    if registry.conflicts:
        clash = Table(title="component names registered by two distributions (a spec must pin one)")
        for col in ("component", "distributions", "pin it in the spec with"):
            clash.add_column(col)
        for name, claimants in sorted(registry.conflicts.items()):
            clash.add_row(name, ", ".join(p.distribution or p.module for p in claimants),
                          " or ".join(f'distribution = "{p.owner_label}"' for p in claimants))
        out.print(clash)
    if missing:
        more = Table(title="known but not installed (registry.toml)")
        for col in ("plugin", "kind", "components", "install"):
            more.add_column(col)
        for e in missing:
            more.add_row(e.key, e.kind, ", ".join(e.components), escape(e.install))
        out.print(more)


@spec_app.command("validate")
def spec_validate(
    file: Annotated[Path, typer.Argument(help="Run spec (TOML).")],
    plugin: PluginOpt = None,
) -> None:
    """Check a spec (syntax, fields, plugins, their options, files) without running it."""
    from .spec import load_spec

    try:
        loaded = load_spec(file, plugin or [])
    except TumorboardError as error:
        _fail(error)
    _plugin_summary(loaded.registry)
    names = [m.plugin for m in loaded.spec.modality] + [loaded.spec.fusion.plugin, loaded.spec.model.plugin]
    out.print(f"{file}: valid ({loaded.spec.run.task}; {', '.join(names)})")


@spec_app.command("schema")
def spec_schema(
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Write to a file instead of stdout.")] = None,
    plugin: PluginOpt = None,
) -> None:
    """Print the JSON Schema of a run spec, covering every installed plugin's options."""
    from .plugins import load_plugins, split_command_line_plugins
    from .spec import spec_json_schema

    schema = spec_json_schema(load_plugins(*split_command_line_plugins(plugin or [])))
    text = json.dumps(schema, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
    data: Annotated[Path, typer.Option(help="A spec pointing at new files, or a folder laid out like the original inputs.")],
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Write predictions (.csv or .parquet).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file (never an input).")] = False,
    plugin: PluginOpt = None,
) -> None:
    """Apply a run's saved pipeline to new patients."""
    from .predict import predict_new, protected_paths
    from .rundir import atomic_write, check_output_file, describe_os_error

    try:
        if output is not None:
            check_output_file(output, overwrite, protected_paths(run_dir, data))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TumorboardWarning)
            frame = predict_new(run_dir, data, plugin or [])
    except TumorboardError as error:
        _fail(error)
    _show_warnings([str(w.message) for w in caught if issubclass(w.category, TumorboardWarning)])
    if output is None:
        out.print(frame)
        return
    try:
        atomic_write(output, frame.write_parquet if output.suffix == ".parquet" else frame.write_csv)
    except OSError as error:
        _fail(TumorboardError(f"cannot write {output}: {describe_os_error(error)}; nothing was written"))
    out.print(f"{frame.height} predictions written to {output}")


_plugin_commands_added = False


def build_app() -> typer.Typer:
    """The whole program: the built-in commands and every loaded plugin's (``register_commands``), added
    once, before arguments are parsed."""
    global _plugin_commands_added
    if not _plugin_commands_added:
        from .commands import CommandKit, install_commands
        from .plugins import load_plugins

        _plugin_commands_added = True
        for problem in install_commands(app, load_plugins(), CommandKit(out, err)):
            err.print(f"[yellow]plugins:[/yellow] {escape(problem)}", highlight=False, soft_wrap=True)
    return app


def main() -> None:
    program = build_app()
    try:
        program()
    finally:
        # The work is done and every file is closed. Freezing the collector's objects spares the
        # interpreter's final collections a scan of everything the scientific stack imported
        # (0.4-0.5 s of a 3 s run after skops and matplotlib are loaded; exit handlers still run).
        import gc

        gc.freeze()
