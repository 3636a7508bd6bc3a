"""The engine: folds, fit on training patients only, out-of-fold predictions, metrics,
refit, explainers, and the run directory.
"""

from __future__ import annotations

import datetime as dt
import functools
import platform
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from .calibration import Calibration
from .cohort import load_cohort
from .components import Modality, _paths_in, paths_in_options
from .data import Cohort, FeatureBlock
from .errors import ComponentError, DataError, RunError, TumorboardWarning
from .execution import Executor, make_executor, thread_budget, using
from .evaluation import (
    Scored,
    ablation_metrics,
    ablation_subsets,
    check_pooled_against_folds,
    collect,
    compute_metrics,
    curves,
    per_fold_metrics,
    survival_context,
    warn,
)
from .pipeline import Pipeline, predict_for_scoring
from .analyses import Analysis, AnalysisContext
from .reporters import write_reports
from .runfiles import FEATURE_LABELS, write_card_key
from .search import REFIT, SearchResult, run_search
from .rundir import check_output_free, hash_inputs, staged_directory, write_json
from .spec import LoadedSpec, build_model, default_metrics, load_spec
from .splits import Fold, make_folds, read_split_file


class Progress(Protocol):
    """Where the engine reports progress (the CLI draws it with rich)."""

    def begin(self, total: int, description: str) -> None: ...
    def update(self, description: str) -> None: ...
    def advance(self) -> None: ...
    def end(self) -> None: ...
    def stage(self, name: str, seconds: float) -> None:
        """A stage finished (log-friendly progress prints one line per stage)."""


class NoProgress:
    def begin(self, total: int, description: str) -> None: ...
    def update(self, description: str) -> None: ...
    def advance(self) -> None: ...
    def end(self) -> None: ...
    def stage(self, name: str, seconds: float) -> None: ...


class Stages:
    """Times each named stage of a run, reports it to the progress, and keeps the timings for
    provenance.json."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self.progress.update(name)
        yield
        self.record(name, time.perf_counter() - start)

    def record(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(seconds, 3)
        stage = getattr(self.progress, "stage", None)
        if stage is not None:
            stage(name, seconds)


# about what a local worker process costs before its first task (start, imports of the stack)
WORKER_START_SECONDS = 2.0


def _quiet(stage: str) -> None:
    """A fold's pipeline in a worker process reports nothing (its parent reports the fold)."""


@dataclass
class FoldResult:
    """What one fold's task sends back: predictions per set, prediction rows, ablation predictions."""

    predictions: dict[str, np.ndarray]
    frames: list[pl.DataFrame]
    ablation: dict[str, np.ndarray]
    seconds: float
    fitted: Pipeline | None = None


@contextmanager
def _failure_names(where: str) -> Iterator[None]:
    """A component's error, prefixed with where in the run it happened (the fold, the ablation subset)."""
    try:
        yield
    except (DataError, ComponentError, RunError) as err:
        raise type(err)(f"{where}: {err}") from err


def fit_fold(pipeline: Pipeline, cohort: Cohort, fold: Fold, n_classes: int, context,
             subsets: dict[str, tuple[str, ...]], keep_fitted: bool = False) -> FoldResult:
    """Fit a fresh pipeline on one fold's training patients and predict its other sets.

    A self-contained task (it runs in a worker process or on a Ray node): its
    inputs are all it reads, and the components' seeds are the run's, so its
    result does not depend on where or when it runs.
    """
    start = time.perf_counter()
    y = cohort.target
    train_ids = [cohort.ids[i] for i in fold.train]
    with _failure_names(f"outer fold {fold.label}"):
        fitted = pipeline.clone().fit(train_ids, y.take(fold.train))
        predictions: dict[str, np.ndarray] = {}
        frames = []
        for set_name, index in {"test": fold.test, **fold.extra}.items():
            if len(index) == 0:
                continue
            pipeline.on_stage(f"{fold.label}: predicting {len(index)} {set_name} patients")
            pred = predict_for_scoring(fitted, [cohort.ids[i] for i in index], y, n_classes, context)
            predictions[set_name] = pred
            frames.append(_prediction_frame(cohort, fold, set_name, index, pred))
    ablation = {}
    for label, names in subsets.items():
        # the fold's fitted modalities are reused: only fusion and model are refitted
        pipeline.on_stage(f"{fold.label}: ablation, {label}")
        with _failure_names(f"outer fold {fold.label}, ablation subset {label!r} ({', '.join(names)})"):
            sub = fitted.ablated(names).fit(train_ids, y.take(fold.train), refit_modalities=False)
            ablation[label] = predict_for_scoring(sub, [cohort.ids[i] for i in fold.test], y, n_classes, context)
    return FoldResult(predictions, frames, ablation, time.perf_counter() - start, fitted if keep_fitted else None)


@dataclass
class RunResult:
    """What a finished run wrote: its folder, metrics and out-of-fold predictions."""

    path: Path
    metrics: dict[str, Any]
    predictions: pl.DataFrame
    warnings: list[str] = field(default_factory=list)




def check_modality_coverage(cohort: Cohort, modalities: Sequence[tuple[str, Modality]], notes: list[str]) -> None:
    """Ids that match no cohort patient are an error; partial matches a warning with counts."""
    cohort_ids = set(cohort.ids)
    for name, modality in modalities:
        available = modality.available_ids()
        if available is None:
            continue
        files = ", ".join(str(p) for p in modality.input_files()) or modality.name
        matched = cohort_ids & available
        if not matched:
            hint = modality.explain_id_mismatch(cohort_ids)
            if hint:
                raise DataError(f"modality {name!r} ({modality.name}, {files}): {hint}")
            raise DataError(
                f"modality {name!r} ({modality.name}, {files}): none of its {len(available)} patient ids "
                f"match the {len(cohort_ids)} cohort patients (e.g. {sorted(available)[:2]!r} vs "
                f"{sorted(cohort_ids)[:2]!r}); check the id column and the id format"
            )
        absent = len(cohort_ids) - len(matched)
        extra = len(available) - len(matched)
        if absent or extra:
            parts = []
            if absent:
                parts.append(f"{absent} of {len(cohort_ids)} cohort patients have no data and are marked absent")
            if extra:
                parts.append(f"{extra} ids in the file are not in the cohort and are ignored")
            warn(f"modality {name!r} ({files}): " + "; ".join(parts), notes)


def _prediction_frame(
    cohort: Cohort, fold: Fold, set_name: str, index: np.ndarray, pred: np.ndarray
) -> pl.DataFrame:
    y = cohort.target
    data: dict[str, Any] = {
        "patient_id": [cohort.ids[i] for i in index],
        "repeat": np.full(len(index), fold.repeat, dtype=np.int32),
        "fold": np.full(len(index), fold.fold, dtype=np.int32),
        "set": [set_name] * len(index),
    }
    if y.kind == "survival":
        data["y_true"] = y.values[index]
        data["event"] = y.event[index]  # type: ignore[index]
        data["y_pred"] = pred if pred.ndim == 1 else pred[:, 0]  # the risk; curves are not stored
    elif y.kind == "multiclass":
        data["y_true"] = [y.classes[v] for v in y.values[index]]
        data["y_pred"] = [y.classes[v] for v in np.argmax(pred, axis=1)]
        for k, label in enumerate(y.classes):
            data[f"p_{label}"] = pred[:, k]
    elif y.kind == "binary":
        data["y_true"] = y.values[index]
        data["y_pred"] = pred
    else:
        data["y_true"] = y.values[index]
        data["y_pred"] = pred
    return pl.DataFrame(data)


def _versions(registry) -> dict[str, Any]:
    plugins = {}
    for info in registry.plugins:
        if info.status == "ok":
            plugins[info.name] = {"distribution": info.distribution, "version": info.version, "components": info.components}
    try:
        own = metadata.version("tumorboard")
    except metadata.PackageNotFoundError:
        own = "unknown"
    return {"tumorboard": own, "plugins": plugins}


def _input_paths(loaded: LoadedSpec) -> list[Path]:
    spec = loaded.spec
    paths = [loaded.resolve(spec.cohort.outcomes)]
    if spec.evaluation.split_file:
        paths.append(loaded.resolve(spec.evaluation.split_file))
    for component in [*loaded.modalities, loaded.fusion, loaded.model, *loaded.explainers]:
        paths += paths_in_options(component)  # type: ignore[arg-type]
    if loaded.search is not None:
        paths += [p for slot in loaded.search.slots.values() for p in slot.paths]
    for _, options in loaded.analyses.values():
        paths += [loaded.resolve(p) for p in _paths_in(options)]
    return paths


def resolved_spec(loaded: LoadedSpec, metric_names: list[str], searched: SearchResult | None = None) -> dict[str, Any]:
    """The spec with every default filled in and every component's options validated; with a search,
    the configuration each outer fold's search and the refit's search selected (``search_selected``)."""
    data = loaded.spec.model_dump(mode="json")
    data["run"]["output"] = str(loaded.output)
    data["cohort"]["outcomes"] = str(loaded.resolve(loaded.spec.cohort.outcomes))
    data["evaluation"]["metrics"] = metric_names
    for i, m in enumerate(loaded.modalities):
        data["modality"][i]["options"] = m.options.model_dump(mode="json")
    data["fusion"]["options"] = loaded.fusion.options.model_dump(mode="json")  # type: ignore[union-attr]
    data["model"]["options"] = loaded.model.options.model_dump(mode="json")  # type: ignore[union-attr]
    for i, e in enumerate(loaded.explainers):
        data["explainer"][i]["options"] = e.options.model_dump(mode="json")
    for section, (_, options) in loaded.analyses.items():
        data[section] = options.model_dump(mode="json")
    if loaded.spec.search is not None:
        data["search"] = loaded.spec.search.model_dump(mode="json", by_alias=True, exclude_none=True)
    if searched is not None:
        data["search_selected"] = {
            key: {"inner_score": s.inner_score, "trial": s.trial, "params": s.params, "components": s.configuration}
            for key, s in searched.selected.items()}
    return data


def load_run_cohort(loaded: LoadedSpec) -> Cohort:
    spec = loaded.spec
    cohort = load_cohort(
        loaded.resolve(spec.cohort.outcomes),
        id_column=spec.cohort.id,
        task=spec.run.task,
        target=spec.cohort.target,
        subgroups=spec.cohort.subgroups,
        site=spec.cohort.site,
        split_column=spec.evaluation.split_column,
    )
    if spec.evaluation.split_file is not None:
        labels = read_split_file(loaded.resolve(spec.evaluation.split_file), cohort, spec.cohort.id)
        cohort = Cohort(cohort.ids, cohort.target, cohort.subgroups, cohort.sites, labels)
    return cohort


@dataclass
class _Run:
    """One run's state as its named stages fill it in (``run`` calls them in order)."""

    loaded: LoadedSpec
    progress: Progress
    executor: Executor
    stages: Stages
    started: dt.datetime
    notes: list[str]
    cohort: Cohort
    pipeline: Pipeline
    folds: list[Fold]
    metric_names: list[str]
    context: Any
    analyses: dict[str, Analysis]
    subsets: dict[str, tuple[str, ...]]
    stage: Path = Path()
    searched: SearchResult | None = None
    fold_preds: dict = field(default_factory=dict)
    ablation_preds: dict = field(default_factory=dict)
    frames: list[pl.DataFrame] = field(default_factory=list)
    scored: Scored | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    final: Pipeline | None = None

    @property
    def rs(self):
        return self.loaded.spec

    @property
    def n_classes(self) -> int:
        y = self.cohort.target
        return y.n_classes if y.kind == "multiclass" else 0


def run(
    spec: LoadedSpec | Path | str,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    extra_modules: Sequence[str] = (),
    backend: str | None = None,
    workers: int | None = None,
) -> RunResult:
    """Run a spec end to end and write its run directory; return what it wrote.

    Every modality, the fusion and the model are fitted on each fold's training
    patients only; the test patients of a fold are only ever transformed and
    predicted. Nothing is written at the output path unless the run completes.
    ``backend`` and ``workers`` override the spec's ``[execution]`` section.
    The work is a sequence of named stages (below), each timed in provenance.json.
    """
    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(Path(spec), list(extra_modules))
    progress = progress or NoProgress()
    output = loaded.output
    protected = [p for p in [loaded.path, *_input_paths(loaded)] if p is not None]
    check_output_free(output, overwrite, "run", protected)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TumorboardWarning)
        r = _prepare(loaded, progress, make_executor(loaded.spec.execution, backend=backend, workers=workers))
        with staged_directory(output, overwrite, "run", protected) as staged, using(r.executor):
            r.stage = staged.path
            trials = (loaded.search.trials or 0) * (len(r.folds) + 1) if loaded.search is not None else 0
            progress.begin(len(r.folds) + 2 + trials, "cross-validation")
            _search(r)
            _cross_validation(r)
            _metrics(r)
            _ablation(r)
            progress.advance()
            _refit(r)
            _analyses(r)
            _explain(r)
            progress.advance()
            predictions = _write_results(r, output, caught)
            with r.stages("writing the reports"):
                _report(r.stage, output, loaded.registry, r.metrics, r.notes)
            progress.end()
        r.notes.extend(staged.notes)
        output = staged.final or output

    for w in caught:
        if not issubclass(w.category, TumorboardWarning):
            continue
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return RunResult(output, r.metrics, predictions, r.notes)


def _prepare(loaded: LoadedSpec, progress: Progress, executor: Executor) -> _Run:
    """Stage 1: the cohort, the pipeline, the folds, the analyses and the ablation subsets (nothing fitted)."""
    rs, notes = loaded.spec, []
    started = dt.datetime.now(dt.UTC)
    cohort = load_run_cohort(loaded)
    calibration = (Calibration(rs.model.calibration, rs.model.calibration_folds)  # type: ignore[arg-type]
                   if rs.model.calibration != "none" else None)
    pipeline = Pipeline(list(zip([m.name for m in rs.modality], loaded.modalities, strict=True)), loaded.fusion,
                        loaded.model, calibration=calibration)  # type: ignore[arg-type]
    check_modality_coverage(cohort, pipeline.modalities, notes)
    split_source = str(rs.evaluation.split_file or f"{rs.cohort.outcomes}:{rs.evaluation.split_column}")
    folds = make_folds(cohort, rs.evaluation, rs.run.seed, cohort.split, split_source)
    metric_names = rs.evaluation.metrics or default_metrics(rs.run.task)
    y = cohort.target
    context = survival_context(y, rs.evaluation.horizons) if y.kind == "survival" else None
    if "ibs" in metric_names and not loaded.model.provides_survival_curves:  # type: ignore[union-attr]
        warn(f"{loaded.model.name} gives no survival curves; the integrated Brier score is reported as n/a", notes)
    # plugin-owned sections ([treatment]): analyses on the same folds
    analyses = {section: cls(options, AnalysisContext(
        cohort, loaded.resolve(rs.cohort.outcomes), rs.cohort.id, loaded.model, rs.run.seed,  # type: ignore[arg-type]
        loaded.base_dir, rs.evaluation.confidence, rs.evaluation.bootstrap,
        functools.partial(build_model, loaded), notes)) for section, (cls, options) in loaded.analyses.items()}
    subsets: dict[str, tuple[str, ...]] = {}
    if rs.evaluation.ablation:
        if len(pipeline.modalities) < 2:
            warn("evaluation.ablation needs at least two modalities; there is nothing to ablate", notes)
        else:
            subsets = ablation_subsets([n for n, _ in pipeline.modalities])
    return _Run(loaded, progress, executor, Stages(progress), started, notes, cohort, pipeline, folds, metric_names,
                context, analyses, subsets)


def _search(r: _Run) -> None:
    """Stage 2 (with [search]): a nested search per outer fold and for the refit."""
    search = r.loaded.search
    if search is None:
        return
    with r.stages(f"search: {search.trials or 'timed'} trials for each of {len(r.folds)} outer folds and the refit"):
        r.searched = run_search(search, r.loaded, r.cohort, r.folds, r.executor, r.progress, r.notes)
        (r.stage / "search").mkdir()
        r.searched.trials.write_parquet(r.stage / "search" / "trials.parquet")


def _cross_validation(r: _Run) -> None:
    """Stage 3: every outer fold fitted on its training patients; out-of-fold predictions."""
    r.fold_preds, r.frames, r.ablation_preds = _cross_validate(
        r.pipeline, r.cohort, r.folds, r.n_classes, r.context, r.subsets, r.analyses, r.executor, r.stages,
        r.searched.pipelines if r.searched is not None else {})


def _metrics(r: _Run) -> None:
    """Stage 4: metrics with bootstrap intervals, curves, per fold, per site and per extra set."""
    rs, cohort, folds, names, context = r.rs, r.cohort, r.folds, r.metric_names, r.context
    with r.stages("metrics with bootstrap confidence intervals"):
        r.scored = scored = collect(folds, r.fold_preds, "test")
        metrics = compute_metrics(cohort, scored, names, rs.evaluation, rs.run.seed, r.notes,  # type: ignore[arg-type]
                                  context=context)
        metrics["curves"] = curves(cohort, scored, rs.evaluation, r.notes,  # type: ignore[arg-type]
                                   calibration_advice(rs.run.task, rs.model))
        if context is not None:
            metrics["horizons"] = list(context.horizons)
        if r.searched is not None:
            metrics["search"] = r.searched.summary
        metrics["task"] = rs.run.task
        metrics["strategy"] = rs.evaluation.strategy
        metrics["folds"] = len(folds)
        if len(folds) > 1:
            metrics["per_fold"] = per_fold_metrics(cohort, folds, r.fold_preds, names, context)  # type: ignore[arg-type]
            metrics["pooled_differs"] = check_pooled_against_folds(
                rs.run.task, metrics["overall"], metrics["per_fold"], r.notes)
        if rs.evaluation.strategy == "site":
            metrics["sites"] = {}
            for fold in folds:
                sub = Scored(fold.test, [r.fold_preds[(fold.repeat, fold.fold, "test")]])
                metrics["sites"][fold.label] = compute_metrics(
                    cohort, sub, names, rs.evaluation, rs.run.seed, [], audit=False, context=context)["overall"]
        for set_name in sorted({s for f in folds for s in f.extra}):
            extra = collect(folds, r.fold_preds, set_name)
            if extra is not None:
                metrics.setdefault("sets", {})[set_name] = compute_metrics(
                    cohort, extra, names, rs.evaluation, rs.run.seed, [], audit=False, context=context)["overall"]
    r.metrics = metrics


def _ablation(r: _Run) -> None:
    """Stage 5 (with evaluation.ablation): each modality subset on the same folds, paired gains."""
    if not r.subsets:
        return
    with r.stages("ablation: metrics and paired bootstrap gains"):
        parts = {label: (names, collect(r.folds, r.ablation_preds[label], "test")) for label, names in r.subsets.items()}
        r.metrics["ablation"] = ablation_metrics(r.cohort, r.scored, parts, r.metric_names, r.rs.evaluation,  # type: ignore[arg-type]
                                                 r.rs.run.seed, r.context)


def _refit(r: _Run) -> None:
    """Stage 6: the pipeline (or the search's choice) refitted on every patient and saved without pickle."""
    n, y, ids = len(r.cohort), r.cohort.target, list(r.cohort.ids)
    with r.stages(f"refit on all {n} patients"):
        r.pipeline.on_stage = lambda stage: r.progress.update(f"refit on all {n} patients: {stage}")
        chosen = r.searched.selected[REFIT].configuration if r.searched is not None else {}
        refit = r.searched.pipelines[REFIT] if r.searched is not None else r.pipeline
        refit.on_stage = r.pipeline.on_stage
        with _failure_names(f"refit on all {n} patients"):
            r.final = final = refit.clone().fit(ids, y)
        final.save(r.stage / "pipeline", _raw_options(r.loaded, chosen), {"task": y.kind, "classes": list(y.classes)},
                   _pinned_distributions(r.loaded, chosen))
        _write_presence(r.stage / "presence.parquet", final, ids)


def _analyses(r: _Run) -> None:
    """Stage 7: each plugin-owned section's analysis scores its folds and refits (RUN_DIR/<section>/)."""
    for section, analysis in r.analyses.items():
        with r.stages(f"[{section}]: scoring and refit"):
            (r.stage / section).mkdir()
            r.metrics[section] = analysis.finish(r.final.features, r.stage / section, list(r.cohort.ids))  # type: ignore[union-attr]


def _explain(r: _Run) -> None:
    """Stage 8: explainers on the refitted pipeline; the modalities' readable feature names beside them."""
    if not r.loaded.explainers:
        return
    final, ids = r.final, list(r.cohort.ids)
    X = final.features(ids)  # type: ignore[union-attr]
    write_json(r.stage / FEATURE_LABELS, _feature_labels(final, ids))  # type: ignore[arg-type]
    (r.stage / "attributions").mkdir()
    for explainer in r.loaded.explainers:
        with r.stages(f"explaining with {explainer.name}"):
            extra = {"modalities": dict(final.modalities)} if _wants_modalities(explainer) else {}  # type: ignore[union-attr]
            attribution = explainer.explain(final.model, X, X.feature_names, r.cohort.target, **extra)  # type: ignore[union-attr]
            _write_attribution(r.stage / "attributions", explainer.name, attribution, X)


def _write_results(r: _Run, output: Path, caught: list) -> pl.DataFrame:
    """Stage 9: predictions, the spec as given and resolved, metrics with the run's warnings, provenance.
    Saved before anything is drawn: a report failure never discards the computation."""
    write_card_key(r.stage)
    predictions = pl.concat(r.frames, how="vertical")
    predictions.write_parquet(r.stage / "predictions.parquet")
    (r.stage / "spec.toml").write_text(r.loaded.text, encoding="utf-8")
    write_json(r.stage / "resolved.json", resolved_spec(r.loaded, r.metric_names, r.searched))
    for w in caught:
        text = str(w.message)
        # libraries' deprecation notices are about their code, not this run's data: not the user's to fix
        if issubclass(w.category, DeprecationWarning | PendingDeprecationWarning | FutureWarning):
            continue
        if text not in r.notes:
            r.notes.append(text)
    r.metrics["warnings"] = r.notes
    write_json(r.stage / "metrics.json", r.metrics)
    write_json(r.stage / "provenance.json", {
        **_versions(r.loaded.registry),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "seed": r.rs.run.seed,
        "inputs_sha256": hash_inputs(_input_paths(r.loaded)),
        "started": r.started.isoformat(),
        "finished": dt.datetime.now(dt.UTC).isoformat(),
        "execution": r.executor.describe(),
        "stages_seconds": r.stages.seconds,
    })
    return predictions


def _cross_validate(pipeline: Pipeline, cohort: Cohort, folds: list[Fold], n_classes: int, context,
                    subsets: dict[str, tuple[str, ...]], analyses: dict[str, Analysis], executor: Executor,
                    stages: Stages, per_fold: dict[str, Pipeline]):
    """Every fold (and its ablation subsets) as one task on the executor; out-of-fold predictions.

    ``per_fold`` holds a fold's own pipeline (the configuration its search
    selected) by fold label; other folds fit ``pipeline``. Analyses (a
    plugin-owned section such as ``[treatment]``) reuse the fold's fitted
    pipeline in this process, so a spec with one runs its folds here, one
    after another.
    """
    fold_preds: dict[tuple[int, int, str], np.ndarray] = {}
    ablation_preds: dict[str, dict[tuple[int, int, str], np.ndarray]] = {label: {} for label in subsets}
    frames: list[pl.DataFrame] = []

    def keep(fold: Fold, result: FoldResult) -> None:
        for set_name, pred in result.predictions.items():
            fold_preds[(fold.repeat, fold.fold, set_name)] = pred
        frames.extend(result.frames)
        for label, pred in result.ablation.items():
            ablation_preds[label][(fold.repeat, fold.fold, "test")] = pred
        stages.record(f"cross-validation, {fold.label}", result.seconds)
        stages.progress.advance()

    def here(fold: Fold) -> None:
        chosen = per_fold.get(fold.label, pipeline)
        chosen.on_stage = lambda stage, label=fold.label: stages.progress.update(f"{label}: {stage}")
        with thread_budget(executor.threads):  # the budget a worker's task runs under, so the bytes match
            result = fit_fold(chosen, cohort, fold, n_classes, context, subsets, keep_fitted=bool(analyses))
        for section, analysis in analyses.items():
            stages.progress.update(f"{fold.label}: [{section}]")
            analysis.fold(result.fitted.features, fold.train, fold.test, fold.label)  # type: ignore[union-attr]
        result.fitted = None
        keep(fold, result)

    remaining = list(folds)
    in_process = bool(analyses) or executor.workers == 1
    if not in_process and executor.auto and len(folds) > 1:
        # workers = "auto": a worker process costs its start and imports; folds quicker than that stay here
        here(remaining.pop(0))
        in_process = stages.seconds[f"cross-validation, {folds[0].label}"] < WORKER_START_SECONDS
    if in_process:
        for fold in remaining:
            here(fold)
        return fold_preds, frames, ablation_preds
    stages.progress.update(f"cross-validation: {len(remaining)} folds on {executor.workers} {executor.backend} workers")
    shipped = {}
    for fold in remaining:
        shipped[fold.label] = per_fold.get(fold.label, pipeline).clone()
        shipped[fold.label].on_stage = _quiet
    tasks = [(shipped[fold.label], cohort, fold, n_classes, context, subsets) for fold in remaining]
    for fold, result in zip(remaining, executor.map(fit_fold, tasks), strict=True):
        keep(fold, result)
    return fold_preds, frames, ablation_preds


def calibration_advice(task: str, model) -> str | None:
    """What the spec can do about poorly calibrated probabilities (None: nothing left to set)."""
    if task == "binary" and model.calibration == "none":
        return 'set calibration = "isotonic" (or "sigmoid") in [model]'
    if task == "multiclass" and model.plugin == "model.gbm" and model.options.get("calibration", "none") == "none":
        return 'set options.calibration = "isotonic" (or "sigmoid") for model.gbm in [model]'
    return None


def _saved_key(slot: str) -> str:
    """A search slot ("modality.rna", "model") as the saved pipeline names it ("modality:rna", "model")."""
    return slot.replace("modality.", "modality:", 1)


def _raw_options(loaded: LoadedSpec, chosen: dict[str, dict]) -> dict[str, dict]:
    """Each component's options as the spec wrote them; ``chosen``: the refit search's configuration."""
    raw = {f"modality:{m.name}": m.options for m in loaded.spec.modality}
    raw["fusion"] = loaded.spec.fusion.options
    raw["model"] = loaded.spec.model.options
    raw.update({_saved_key(slot): config["options"] for slot, config in chosen.items()})
    return raw


def _pinned_distributions(loaded: LoadedSpec, chosen: dict[str, dict]) -> dict[str, str | None]:
    """Which distribution the spec pinned for each component (two installed ones may share a name)."""
    pins = {f"modality:{m.name}": m.distribution for m in loaded.spec.modality}
    pins["fusion"] = loaded.spec.fusion.distribution
    pins["model"] = loaded.spec.model.distribution
    pins.update({_saved_key(slot): config["distribution"] for slot, config in chosen.items()})
    return pins


def _wants_modalities(explainer) -> bool:
    """Whether an explainer's ``explain`` takes the fitted modalities (a keyword added after the first API)."""
    import inspect

    return "modalities" in inspect.signature(explainer.explain).parameters


def _feature_labels(final: Pipeline, ids: list[str]) -> dict[str, dict[str, str]]:
    """Readable names each fitted modality gives its features (spec modality name -> feature -> label)."""
    labels = {}
    for (name, modality), block in zip(final.modalities, final.blocks(ids)):
        try:
            found = modality.feature_labels(block.feature_names)
        except Exception:  # a label is a nicety: the report falls back to the column name
            found = {}
        if found:
            labels[name] = {str(k): str(v) for k, v in found.items()}
    return labels


def _report(stage: Path, output: Path, registry, metrics: dict, notes: list[str]) -> None:
    """Every reporter's page, after the computation is saved: a failure is a warning, never the run's end."""
    problems = [f"{name} was not drawn: it {why}; the run is complete, and `tumorboard report {output}` draws it "
                "once the reporter can run" for name, why in registry.unavailable_reporters.items()]
    if registry.reporters:
        _, failed = write_reports(stage, registry.reporters, finished=False)
        problems += [p.replace(f"tumorboard report {stage}", f"tumorboard report {output}") for p in failed]
    for problem in problems:
        warn(problem, notes)
    if problems:
        metrics["warnings"] = notes
        write_json(stage / "metrics.json", metrics)


def _write_presence(path: Path, pipeline: Pipeline, ids: list[str]) -> None:
    """Which modalities each patient has (the patient card's missing data)."""
    frame = pl.DataFrame({"patient_id": ids, **{b.modality: b.presence for b in pipeline.blocks(ids)}})
    frame.write_parquet(path)


def _write_attribution(folder: Path, name: str, attribution, X: FeatureBlock) -> None:
    """The global table, the per-patient values (and the features they explain), modality shares,
    a summary, and any saliency images."""
    from .explanations import modality_shares

    table = {
        "feature": list(attribution.feature_names),
        "importance": attribution.importance,
    }
    if attribution.spread is not None:
        table["spread"] = attribution.spread
    if attribution.sources is not None:
        table["modality"] = list(attribution.sources)
    pl.DataFrame(table).sort("importance", descending=True).write_parquet(folder / f"{name}.parquet")
    summary: dict[str, object] = {"method": attribution.method, "units": attribution.units,
                                  "baseline": attribution.baseline}
    if attribution.per_patient is not None:
        frame = pl.DataFrame(attribution.per_patient, schema=list(attribution.feature_names), orient="row")
        frame.insert_column(0, pl.Series("patient_id", list(attribution.ids)))
        frame.write_parquet(folder / f"{name}-patients.parquet")
        if tuple(attribution.feature_names) == tuple(X.feature_names):  # the fused features, for summary plots
            row = {pid: k for k, pid in enumerate(X.ids)}
            rows = np.array([row[i] for i in attribution.ids])
            values = pl.DataFrame(X.values[rows].astype(np.float32), schema=list(X.feature_names), orient="row")
            values.insert_column(0, pl.Series("patient_id", list(attribution.ids)))
            values.write_parquet(folder / f"{name}-features.parquet")
        shares = modality_shares(attribution)
        if shares is not None:
            shares[0].write_parquet(folder / f"{name}-modalities.parquet")
            summary["modality_shares"] = shares[1]
    if attribution.images:
        arrays = {f"{modality}/{patient}/{part}": np.asarray(value, dtype=np.float32)
                  for modality, patients in attribution.images.items()
                  for patient, parts in patients.items() for part, value in parts.items()}
        np.savez_compressed(folder / f"{name}-images.npz", **arrays)
    write_json(folder / f"{name}.json", summary)
