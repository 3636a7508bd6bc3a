"""The run spec: TOML validated by pydantic, each component validating its own options.

Every problem is reported in one pass with the file, line, field path, the bad
value, what was expected and a fix (``SpecError``).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .catalogue import load_catalogue
from .components import Component
from .analyses import SectionChecker
from .errors import ComponentError, Problem, SpecError
from .metrics import DEFAULT_METRICS, METRICS
from .plugins import PluginRegistry, load_plugins, module_available, resolve_local_plugin, split_command_line_plugins
from .searchspace import SearchPlan, SearchSection, check_search
from .specproblems import problems_from as _problems_from
from .specproblems import build_component, unknown_component_message
from .tomlindex import TomlLineIndex, format_path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunSection(_Strict):
    """``[run]``: what the run is called, its task, seed and output folder."""

    name: str = Field(description="A short name for the run.")
    task: Literal["binary", "multiclass", "regression", "survival"] = Field(
        description="binary | multiclass | regression | survival"
    )
    seed: int = Field(0, ge=0, lt=2**32, description="Seed for folds, bootstrap and every component (0 to 2^32 - 1).")
    output: Path = Field(description="Run directory, relative to the spec's folder.")


class CohortSection(_Strict):
    """``[cohort]``: the outcomes table and its columns."""

    outcomes: Path = Field(description="CSV, TSV or Parquet file with one row per patient.")
    id: str = Field("patient_id", description="Column holding patient ids.")
    target: str | list[str] = Field(
        description='Target column; for survival a pair ["time", "event"].'
    )
    subgroups: list[str] = Field(default_factory=list, description="Columns for the subgroup audit.")
    site: str | None = Field(None, description="Column holding each patient's site.")


class ComponentSpec(_Strict):
    """A component: which plugin, with which options (checked by the plugin itself)."""

    plugin: str = Field(description="Component name, e.g. 'model.logistic'.")
    distribution: str | None = Field(
        None, description="The distribution that provides the component, when two installed ones register the same "
        "name (see `tumorboard plugins`); for a local plugin file, its path.")
    options: dict[str, Any] = Field(default_factory=dict)


class ModelSpec(ComponentSpec):
    """``[model]``: the predictor, and the engine's probability calibration for binary tasks."""

    calibration: Literal["none", "isotonic", "sigmoid"] = Field(
        "none", description="Binary tasks: calibrate any model's probabilities (isotonic regression or Platt's "
        "sigmoid), fitted on inner out-of-fold predictions of the training patients.")
    calibration_folds: int = Field(3, ge=2, description="Inner folds of the training patients used to calibrate.")


class ModalitySpec(ComponentSpec):
    """``[[modality]]``: one data source."""

    name: str = Field(description="Modality name used in feature names and reports.")

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if not value or not value.replace("_", "").replace("-", "").isalnum():
            raise ValueError("use letters, digits, '_' or '-' (it prefixes feature names)")
        return value


class EvaluationSection(_Strict):
    """``[evaluation]``: how patients are split and what is measured."""

    strategy: Literal["kfold", "holdout", "site", "predefined"] = Field(
        "kfold",
        description="kfold (stratified, repeated), holdout (one stratified split), "
        "site (external validation by the cohort's site column), predefined (folds or a "
        "train/validation/test split read from a column or file)",
    )
    folds: int = Field(5, ge=2, description="Number of folds (at least 2).")
    repeats: PositiveInt = Field(1, description="Repetitions of k-fold with reshuffled folds.")
    holdout: float = Field(0.25, gt=0, lt=1, description="Test fraction for strategy = holdout.")
    test_sites: list[str] = Field(
        default_factory=list,
        description="Sites held out for strategy = site; empty means leave each site out in turn.",
    )
    split_column: str | None = Field(
        None,
        description="Outcomes column with predefined folds (integers) or train/validation/test labels.",
    )
    split_file: Path | None = Field(
        None, description="CSV/Parquet with the id column and a 'fold' or 'split' column."
    )
    metrics: list[str] | None = Field(None, description="Metrics to report; default depends on task.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap replicates for confidence intervals.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals.")
    ablation: bool = Field(
        False, description="Also evaluate each modality alone and all-but-one on the same folds, and report the "
        "multimodal gain with paired bootstrap CIs (fusion and model refitted; modalities reused).")
    min_subgroup_size: PositiveInt = Field(
        30, description="Subgroups smaller than this get a warning that estimates are unstable."
    )
    horizons: list[float] | None = Field(
        None, description="Survival: times for the time-dependent AUC (default: quartiles of event times)."
    )
    risk_groups: int = Field(3, ge=2, description="Survival: quantile groups of predicted risk (3 = tertiles).")
    risk_thresholds: list[float] | None = Field(None, description="Survival: risk cut-offs instead of quantile groups.")
    ece_warning: float = Field(
        0.1, gt=0, lt=1, description="Warn when the expected calibration error of the probabilities exceeds this."
    )


class PluginsSection(_Strict):
    """``[plugins]``: local, uninstalled plugin files beside the spec, loaded by location."""

    modules: list[str] = Field(
        default_factory=list,
        description="Local plugin files in the spec's folder: NAME loads NAME.py or NAME/__init__.py (or give a "
        "relative path ending in .py). Never searched on sys.path; never replayed from a run directory.")


class ExecutionSection(_Strict):
    """``[execution]``: where a run's independent tasks (folds, ablation subsets, per-patient work) run.

    Results are the same bytes whatever the backend and worker count.
    """

    backend: Literal["local", "ray"] = Field(
        "local", description="local (joblib worker processes on this machine) or ray (Ray tasks: a local Ray, or "
        "the cluster at `address`).")
    workers: PositiveInt | Literal["auto"] = Field(
        "auto", description="Parallel workers; auto = this machine's cores (ray: the cluster's CPUs). 1 runs "
        "everything in this process. Overridden by --workers or TUMORBOARD_WORKERS.")
    address: str | None = Field(
        None, description='Ray cluster address (e.g. "ray://head:10001", or "auto" on a cluster node); empty: '
        "start a local Ray.")
    threads_per_worker: PositiveInt | Literal["auto"] = Field(
        "auto", description="Native threads (BLAS, OpenMP, XLA) per worker; auto = cores / workers, so that "
        "workers x threads never exceeds the cores.")

    @model_validator(mode="after")
    def _address_needs_ray(self) -> ExecutionSection:
        if self.address is not None and self.backend != "ray":
            raise ValueError('execution.address is a Ray cluster address: set backend = "ray" to use it')
        return self


class RunSpec(_Strict):
    """A whole run spec (the TOML file)."""

    run: RunSection
    cohort: CohortSection
    modality: list[ModalitySpec] = Field(min_length=1)
    fusion: ComponentSpec = Field(default_factory=lambda: ComponentSpec(plugin="fusion.concat"))
    model: ModelSpec
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    explainer: list[ComponentSpec] = Field(default_factory=list)
    plugins: PluginsSection = Field(default_factory=PluginsSection)
    execution: ExecutionSection = Field(default_factory=ExecutionSection)
    search: SearchSection | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> RunSpec:
        names = [m.name for m in self.modality]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"modality names must be unique; repeated: {', '.join(dupes)}")
        if self.run.task == "survival":
            if not (isinstance(self.cohort.target, list) and len(self.cohort.target) == 2):
                raise ValueError('a survival task needs cohort.target = ["time_column", "event_column"]')
        elif not isinstance(self.cohort.target, str):
            raise ValueError(f"a {self.run.task} task needs cohort.target to be one column name")
        if self.model.calibration != "none":
            if self.run.task != "binary":
                raise ValueError(f"model.calibration calibrates binary probabilities; this is a {self.run.task} task "
                                 '(remove it, or for multiclass use model.gbm\'s options.calibration)')
            if str(self.model.options.get("calibration", "none")) != "none":
                raise ValueError("the model is calibrated twice: set model.calibration or the model's own "
                                 "options.calibration, not both")
        return self


# which family each spec section holds
SECTIONS = {"modality": "modality", "fusion": "fusion", "model": "model", "explainer": "explainer"}


@dataclass
class LoadedSpec:
    """A validated spec: the model, its components built, and where it came from."""

    spec: RunSpec
    path: Path | None
    text: str
    base_dir: Path
    registry: PluginRegistry
    modalities: list[Component] = field(default_factory=list)
    fusion: Component | None = None
    model: Component | None = None
    explainers: list[Component] = field(default_factory=list)
    search: SearchPlan | None = None
    """The checked ``[search]`` (None without one)."""
    analyses: dict[str, tuple[type, BaseModel]] = field(default_factory=dict)
    """Plugin-owned sections (``[treatment]``): section -> (the analysis class, its validated options)."""

    @property
    def output(self) -> Path:
        out = self.spec.run.output
        # normalised but not resolved: a symbolic link at the output must stay visible (and refused)
        return Path(os.path.abspath(out if out.is_absolute() else self.base_dir / out))

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path).resolve()


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """Read and parse a spec file; syntax errors name file:line:column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(str(path), [Problem("", f"spec file not found: {path.resolve()}")]) from None
    except IsADirectoryError:
        raise SpecError(str(path), [Problem("", f"{path} is a folder; give the spec file itself (e.g. {path / 'spec.toml'})")]) from None
    except PermissionError as err:
        raise SpecError(str(path), [Problem("", f"cannot read {path}: permission denied; check the file's permissions")]) from err
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise SpecError(str(path), [Problem("", f"{path}:{line}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
                                                f"{err.start}); save the spec as UTF-8")]) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        # Python 3.11's message ends "(at line L, column C)"
        import re

        m = re.search(r"\(at line (\d+), column (\d+)\)", str(err))
        where = f"{path}:{m.group(1)}:{m.group(2)}" if m else str(path)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(err))
        raise SpecError(str(path), [Problem("", f"{where}: TOML syntax error: {reason}")]) from err


def load_spec(
    path: Path | str,
    extra_modules: list[str] | tuple[str, ...] = (),
    registry: PluginRegistry | None = None,
    base_dir: Path | None = None,
    check_files: bool = True,
) -> LoadedSpec:
    """Read, validate and build a spec; raise ``SpecError`` listing every problem.

    ``base_dir`` overrides the folder relative paths resolve against (used by
    ``tumorboard predict --data FOLDER``). ``check_files`` off skips checks
    that files exist (schema checks of examples).
    """
    path = Path(path)
    text, raw = read_toml(path)
    return validate_spec(raw, text, str(path), base_dir or path.resolve().parent, extra_modules, registry, path, check_files)


def validate_spec(
    raw: dict[str, Any],
    text: str,
    label: str,
    base_dir: Path,
    extra_modules: list[str] | tuple[str, ...] = (),
    registry: PluginRegistry | None = None,
    path: Path | None = None,
    check_files: bool = True,
) -> LoadedSpec:
    index = TomlLineIndex(text)
    # top-level tables the kernel does not know may belong to a plugin (an analysis): checked once plugins load
    owned = {key: value for key, value in raw.items() if key not in RunSpec.model_fields}
    try:
        spec = RunSpec.model_validate({key: value for key, value in raw.items() if key not in owned})
    except ValidationError as err:
        raise SpecError(label, _problems_from(err, (), index)) from err

    problems: list[Problem] = []
    if registry is None:
        # the spec's own local plugins load by file path from the spec's folder, never by sys.path search
        spec_dir = path.resolve().parent if path is not None else base_dir
        files = []
        for i, name in enumerate(spec.plugins.modules):
            found = resolve_local_plugin(name, spec_dir)
            if found is None:
                loc = ("plugins", "modules", i)
                problems.append(Problem(format_path(loc), f"no plugin file {name}.py or {name}/__init__.py in {spec_dir}; "
                                        "[plugins] modules names local plugin files beside the spec (installed "
                                        "plugins need no entry)", index.line_of(loc), name, True))
            else:
                files.append(found)
        cli_modules, cli_files = split_command_line_plugins(extra_modules)
        registry = load_plugins(cli_modules, [*files, *cli_files])
    catalogue = load_catalogue()
    loaded = LoadedSpec(spec, path, text, base_dir, registry)

    if check_files:
        for loc, file in [(("cohort", "outcomes"), spec.cohort.outcomes), (("evaluation", "split_file"), spec.evaluation.split_file)]:
            if file is not None and not loaded.resolve(file).exists():
                problems.append(
                    Problem(format_path(loc), f"file not found: {loaded.resolve(file)}", index.line_of(loc), str(file), True)
                )

    allowed = METRICS[spec.run.task]
    for i, metric in enumerate(spec.evaluation.metrics or []):
        if metric not in allowed:
            loc = ("evaluation", "metrics", i)
            close = difflib.get_close_matches(metric, list(allowed), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                Problem(format_path(loc), f"not a {spec.run.task} metric; {hint}choose from {', '.join(allowed)}",
                        index.line_of(("evaluation", "metrics")), metric, True)
            )

    # what the kernel itself computes with an optional dependency (a light install has none of them)
    for needed, module, what, extra in [
        (spec.run.task == "survival", "sksurv", "survival metrics (IPCW C-index, time-dependent AUC, Brier)",
         "survival"),
        (spec.search is not None, "optuna", "[search]", "search"),
    ]:
        if needed and not module_available(module):
            loc = ("run", "task") if module == "sksurv" else ("search",)
            problems.append(Problem(format_path(loc), f"{what} need {module!r}, which is not installed: "
                                    f'pip install "tumorboard[{extra}]"', index.line_of(loc)))

    def build(section: str, i: int | None, cspec: ComponentSpec) -> Component | None:
        family = SECTIONS[section]
        loc: tuple = (section,) if i is None else (section, i)
        cls = registry.get(family, cspec.plugin, cspec.distribution)
        if cls is None:
            message = unknown_component_message(cspec.plugin, family, registry, catalogue, cspec.distribution)
            problems.append(Problem(format_path(loc + ("plugin",)), message, index.line_of(loc + ("plugin",)), cspec.plugin, True))
            return None
        component = build_component(cls, cspec.options, base_dir, check_files, registry, spec.run.seed)
        if component is None:
            return None
        if isinstance(component, ValidationError):
            problems.extend(_problems_from(component, loc + ("options",), index))
            return None
        # asked of the instance: an ensemble supports what all its members support
        if spec.run.task not in component.tasks:
            problems.append(
                Problem(format_path(loc + ("plugin",)),
                        f"{cls.name} does not support task {spec.run.task!r}; it supports {', '.join(sorted(component.tasks))}",
                        index.line_of(loc + ("plugin",)), cspec.plugin, True)
            )
        return component

    loaded.modalities = [build("modality", i, m) for i, m in enumerate(spec.modality)]  # type: ignore[misc]
    loaded.fusion = build("fusion", None, spec.fusion)
    loaded.model = build("model", None, spec.model)
    loaded.explainers = [build("explainer", i, e) for i, e in enumerate(spec.explainer)]  # type: ignore[misc]
    if spec.search is not None:
        loaded.search = check_search(spec, registry, catalogue, index, base_dir, check_files, problems)
    _check_sections(owned, loaded, index, catalogue, check_files, problems)
    if problems:
        raise SpecError(label, problems)
    return loaded


def _check_sections(owned: dict[str, Any], loaded: LoadedSpec, index: TomlLineIndex, catalogue, check_files: bool,
                    problems: list[Problem]) -> None:
    """Plugin-owned sections: each validated by the analysis that owns it (its Options, then its ``check``)."""
    spec, registry = loaded.spec, loaded.registry
    for section, value in owned.items():
        loc = (section,)
        cls = registry.analyses.get(section)
        if cls is None:
            known = [*RunSpec.model_fields, *registry.analyses]
            close = difflib.get_close_matches(section, known, n=1)
            hint = f"did you mean [{close[0]}]? " if close else ""
            why = registry.unavailable_analyses.get(section)
            if why:
                message = f"[{section}] belongs to an installed plugin that cannot run here: it {why}"
            else:
                owner = next((e for e in catalogue if section in getattr(e, "sections", ())), None)
                message = (f"unknown section [{section}]; {hint}the sections are {', '.join(known)}"
                           + (f"; [{section}] is provided by {owner.distribution!r}, not installed: {owner.install}"
                              if owner else ""))
            problems.append(Problem(format_path(loc), message, index.line_of(loc)))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(format_path(loc), f"[{section}] must be a table", index.line_of(loc)))
            continue
        if spec.run.task not in cls.tasks:
            problems.append(Problem(format_path(loc), f"[{section}] supports task {', '.join(sorted(cls.tasks))}; "
                                    f"run.task is {spec.run.task!r}", index.line_of(loc)))
        try:
            options = cls.Options.model_validate(value, context={"base_dir": loaded.base_dir})
        except ValidationError as err:
            problems.extend(_problems_from(err, loc, index))
            continue
        if spec.search is not None:
            problems.append(Problem("search", f"[search] with [{section}] is not supported yet: the analysis reuses "
                                    f"each fold's fitted pipeline; search without [{section}], then fix the chosen "
                                    "values in the spec", index.line_of(("search",))))

        def check_model(cspec, at: tuple, needs: str | None, _loc=loc) -> str | None:
            model_cls = registry.get("model", cspec.plugin, cspec.distribution)
            if model_cls is None:
                return unknown_component_message(cspec.plugin, "model", registry, catalogue, cspec.distribution)
            component = build_component(model_cls, cspec.options, loaded.base_dir, check_files, registry,
                                        spec.run.seed)
            if isinstance(component, ValidationError):
                problems.extend(_problems_from(component, _loc + at + ("options",), index))
                return None
            if component is None:
                return None
            if needs is not None and needs not in component.tasks:
                return f"{model_cls.name} cannot do {needs}; it needs a {needs} model"
            return None

        checker = SectionChecker(spec.run.task, check_model, loaded.resolve, check_files)
        cls.check(options, checker)
        for at, message in checker.problems:
            where = loc + tuple(at)
            line = index.line_of(where + ("plugin",)) or index.line_of(where)
            problems.append(Problem(format_path(where + (("plugin",) if index.line_of(where + ("plugin",)) else ())),
                                    message, line))
        loaded.analyses[section] = (cls, options)


def build_model(loaded: LoadedSpec, cspec: Any) -> Component:
    """A model a plugin-owned section names (a ComponentSpec), from the spec's own registry, seeded with the run's
    seed (an analysis's models; ensembles' members)."""
    cls = loaded.registry.get("model", cspec.plugin, cspec.distribution)
    if cls is None:
        raise ComponentError(f"no model {cspec.plugin!r} is installed")
    return cls.from_options(cspec.options, base_dir=loaded.base_dir, registry=loaded.registry, seed=loaded.spec.run.seed)


def default_metrics(task: str) -> list[str]:
    return list(DEFAULT_METRICS[task])


def spec_json_schema(registry: PluginRegistry) -> dict[str, Any]:
    """JSON Schema of a run spec, with every installed component's options.

    Each component table becomes a choice keyed by ``plugin``, so a TOML editor
    can complete options once the plugin name is typed.
    """

    def variants(family: str, base: type[BaseModel], extra_fields: dict[str, Any]) -> Any:
        models = []
        for name, cls in sorted(registry.components[family].items()):
            model = create_model(
                f"{family.title()}_{name.replace('.', '_')}",
                __base__=base,
                plugin=(Literal[name], Field(description=(cls.__doc__ or "").strip().splitlines()[0])),  # type: ignore[valid-type]
                options=(cls.Options, Field(default_factory=dict)),  # type: ignore[arg-type]
                distribution=(str | None, Field(None, description=ComponentSpec.model_fields["distribution"].description)),
                **extra_fields,
            )
            models.append(model)
        if not models:
            return base
        from typing import Union

        return Union[tuple(models)]  # type: ignore[return-value]  # noqa: UP007

    modality = variants("modality", _Strict, {"name": (str, Field(description="Modality name."))})
    fusion = variants("fusion", _Strict, {})
    model = variants("model", _Strict, {
        name: (ModelSpec.model_fields[name].annotation, ModelSpec.model_fields[name])
        for name in ("calibration", "calibration_folds")})
    explainer = variants("explainer", _Strict, {})
    schema_model = create_model(
        "RunSpecSchema",
        __base__=_Strict,
        run=(RunSection, ...),
        cohort=(CohortSection, ...),
        modality=(list[modality], Field(min_length=1)),  # type: ignore[valid-type]
        fusion=(fusion | None, None),  # type: ignore[operator]
        model=(model, ...),
        evaluation=(EvaluationSection | None, None),
        explainer=(list[explainer], Field(default_factory=list)),  # type: ignore[valid-type]
        plugins=(PluginsSection | None, None),
        execution=(ExecutionSection | None, None),
        search=(SearchSection | None, None),
        # plugin-owned sections (analyses), validated by their plugin's Options
        **{section: (cls.Options | None, None) for section, cls in sorted(registry.analyses.items())},
    )
    schema = schema_model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tumorboard run spec"
    return schema
