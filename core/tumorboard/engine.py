"""The engine: folds, fit on training patients only, out-of-fold predictions, metrics,
refit, explainers, and the run directory.
"""

from __future__ import annotations

import datetime as dt
import platform
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from .cohort import load_cohort
from .components import Modality, paths_in_options
from .data import Cohort
from .errors import DataError, TumorboardWarning
from .metrics import estimate
from .pipeline import Pipeline
from .rundir import check_output_free, hash_inputs, staged_directory, write_json
from .spec import LoadedSpec, default_metrics, load_spec
from .splits import Fold, make_folds, read_split_file


class Progress(Protocol):
    """Where the engine reports progress (the CLI draws it with rich)."""

    def begin(self, total: int, description: str) -> None: ...
    def update(self, description: str) -> None: ...
    def advance(self) -> None: ...
    def end(self) -> None: ...


class NoProgress:
    def begin(self, total: int, description: str) -> None: ...
    def update(self, description: str) -> None: ...
    def advance(self) -> None: ...
    def end(self) -> None: ...


@dataclass
class RunResult:
    """What a finished run wrote: its folder, metrics and out-of-fold predictions."""

    path: Path
    metrics: dict[str, Any]
    predictions: pl.DataFrame
    warnings: list[str] = field(default_factory=list)


def _warn(message: str, notes: list[str]) -> None:
    notes.append(message)
    warnings.warn(message, TumorboardWarning, stacklevel=3)


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
            _warn(f"modality {name!r} ({files}): " + "; ".join(parts), notes)


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
        data["y_pred"] = pred
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


@dataclass
class _Scored:
    """Out-of-fold predictions of one set, one array per repeat, aligned with ``index``."""

    index: np.ndarray
    per_repeat: list[np.ndarray]


def _collect(cohort: Cohort, folds: list[Fold], fold_preds: dict[tuple[int, int, str], np.ndarray], set_name: str) -> _Scored | None:
    repeats = sorted({f.repeat for f in folds})
    per_repeat = []
    index = None
    for r in repeats:
        chunks = [(f, fold_preds[(r, f.fold, set_name)]) for f in folds if f.repeat == r and (r, f.fold, set_name) in fold_preds]
        if not chunks:
            return None
        idx = np.concatenate([(f.test if set_name == "test" else f.extra[set_name]) for f, _ in chunks])
        pred = np.concatenate([p for _, p in chunks])
        order = np.argsort(idx, kind="stable")
        idx, pred = idx[order], pred[order]
        if index is None:
            index = idx
        per_repeat.append(pred)
    return _Scored(index, per_repeat)  # type: ignore[arg-type]


def compute_metrics(
    cohort: Cohort, scored: _Scored, metric_names: list[str], evaluation, seed: int, notes: list[str],
    audit: bool = True,
) -> dict[str, Any]:
    """Overall metrics with CIs, and (with ``audit``) every metric per subgroup."""
    task = cohort.target.kind
    y = cohort.target.take(scored.index)
    rng = np.random.default_rng(seed)

    def block(sel: np.ndarray) -> dict[str, Any]:
        yy = y.take(sel)
        preds = [p[sel] for p in scored.per_repeat]
        return {
            m: estimate(task, m, yy, preds, bootstrap=evaluation.bootstrap, confidence=evaluation.confidence, rng=rng).as_dict()
            for m in metric_names
        }

    result: dict[str, Any] = {"overall": block(np.arange(len(scored.index))), "n": int(len(scored.index))}
    if not audit:
        return result
    subgroups: dict[str, Any] = {}
    gaps: dict[str, Any] = {}
    for column, labels in cohort.subgroups.items():
        values = np.array(labels)[scored.index]
        per_value: dict[str, Any] = {}
        for value in sorted(set(values.tolist())):
            sel = np.flatnonzero(values == value)
            per_value[value] = block(sel)
            if len(sel) < evaluation.min_subgroup_size:
                _warn(
                    f"subgroup {column} = {value!r} has {len(sel)} scored patients (< {evaluation.min_subgroup_size}); "
                    "its estimates are unstable", notes
                )
            if cohort.target.is_classification and len(np.unique(y.values[sel])) < 2:
                _warn(f"subgroup {column} = {value!r} holds a single class; AUROC-type metrics are undefined there", notes)
        subgroups[column] = per_value
        gaps[column] = {}
        for m in metric_names:
            vals = [v[m]["value"] for v in per_value.values() if v[m]["value"] is not None]
            gaps[column][m] = round(max(vals) - min(vals), 6) if len(vals) >= 2 else None
    result["subgroups"] = subgroups
    result["subgroup_gaps"] = gaps
    return result


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
    return paths


def resolved_spec(loaded: LoadedSpec, metric_names: list[str]) -> dict[str, Any]:
    """The spec with every default filled in and every component's options validated."""
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


def run(
    spec: LoadedSpec | Path | str,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    extra_modules: Sequence[str] = (),
) -> RunResult:
    """Run a spec end to end and write its run directory; return what it wrote.

    Every modality, the fusion and the model are fitted on each fold's training
    patients only; the test patients of a fold are only ever transformed and
    predicted. Nothing is written at the output path unless the run completes.
    """
    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(Path(spec), list(extra_modules))
    progress = progress or NoProgress()
    rs = loaded.spec
    output = loaded.output
    check_output_free(output, overwrite)
    started = dt.datetime.now(dt.UTC)
    notes: list[str] = []

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TumorboardWarning)
        cohort = load_run_cohort(loaded)
        pipeline = Pipeline(list(zip([m.name for m in rs.modality], loaded.modalities, strict=True)), loaded.fusion, loaded.model)  # type: ignore[arg-type]
        check_modality_coverage(cohort, pipeline.modalities, notes)
        split_source = str(rs.evaluation.split_file or f"{rs.cohort.outcomes}:{rs.evaluation.split_column}")
        folds = make_folds(cohort, rs.evaluation, rs.run.seed, cohort.split, split_source)
        metric_names = rs.evaluation.metrics or default_metrics(rs.run.task)
        y = cohort.target
        n_classes = y.n_classes if y.kind == "multiclass" else 0

        with staged_directory(output, overwrite) as stage:
            progress.begin(len(folds) + 2, "cross-validation")
            fold_preds: dict[tuple[int, int, str], np.ndarray] = {}
            frames = []
            for fold in folds:
                pipeline.on_stage = lambda stage, label=fold.label: progress.update(f"{label}: {stage}")
                fitted = pipeline.clone().fit([cohort.ids[i] for i in fold.train], y.take(fold.train))
                sets = {"test": fold.test, **fold.extra}
                for set_name, index in sets.items():
                    if len(index) == 0:
                        continue
                    progress.update(f"{fold.label}: predicting {len(index)} {set_name} patients")
                    pred = fitted.predict([cohort.ids[i] for i in index], y.kind, n_classes)
                    fold_preds[(fold.repeat, fold.fold, set_name)] = pred
                    frames.append(_prediction_frame(cohort, fold, set_name, index, pred))
                progress.advance()

            progress.update("metrics with bootstrap confidence intervals")
            scored = _collect(cohort, folds, fold_preds, "test")
            metrics = compute_metrics(cohort, scored, metric_names, rs.evaluation, rs.run.seed, notes)  # type: ignore[arg-type]
            metrics["task"] = rs.run.task
            metrics["strategy"] = rs.evaluation.strategy
            metrics["folds"] = len(folds)
            if rs.evaluation.strategy == "site":
                metrics["sites"] = {}
                for fold in folds:
                    sub = _Scored(fold.test, [fold_preds[(fold.repeat, fold.fold, "test")]])
                    metrics["sites"][fold.label] = compute_metrics(cohort, sub, metric_names, rs.evaluation, rs.run.seed, [], audit=False)["overall"]
            for set_name in sorted({s for f in folds for s in f.extra}):
                extra = _collect(cohort, folds, fold_preds, set_name)
                if extra is not None:
                    metrics.setdefault("sets", {})[set_name] = compute_metrics(cohort, extra, metric_names, rs.evaluation, rs.run.seed, [], audit=False)["overall"]
            progress.advance()

            pipeline.on_stage = lambda stage: progress.update(f"refit on all {len(cohort)} patients: {stage}")
            final = pipeline.clone().fit(list(cohort.ids), y)
            final.save(stage / "pipeline", _raw_options(loaded), {"task": y.kind, "classes": list(y.classes)})
            if loaded.explainers:
                X = final.features(list(cohort.ids))
                (stage / "attributions").mkdir()
                for explainer in loaded.explainers:
                    progress.update(f"explaining with {explainer.name}")
                    attribution = explainer.explain(final.model, X, X.feature_names, y)  # type: ignore[union-attr]
                    _write_attribution(stage / "attributions", explainer.name, attribution)
            progress.advance()

            predictions = pl.concat(frames, how="vertical")
            predictions.write_parquet(stage / "predictions.parquet")
            (stage / "spec.toml").write_text(loaded.text, encoding="utf-8")
            write_json(stage / "resolved.json", resolved_spec(loaded, metric_names))
            for w in caught:
                text = str(w.message)
                if text not in notes:
                    notes.append(text)
            metrics["warnings"] = notes
            write_json(stage / "metrics.json", metrics)
            write_json(stage / "provenance.json", {
                **_versions(loaded.registry),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "seed": rs.run.seed,
                "inputs_sha256": hash_inputs(_input_paths(loaded)),
                "started": started.isoformat(),
                "finished": dt.datetime.now(dt.UTC).isoformat(),
            })
            progress.end()

    for w in caught:
        if not issubclass(w.category, TumorboardWarning):
            continue
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return RunResult(output, metrics, predictions, notes)


def _raw_options(loaded: LoadedSpec) -> dict[str, dict]:
    raw = {f"modality:{m.name}": m.options for m in loaded.spec.modality}
    raw["fusion"] = loaded.spec.fusion.options
    raw["model"] = loaded.spec.model.options
    return raw


def _write_attribution(folder: Path, name: str, attribution) -> None:
    table = {
        "feature": list(attribution.feature_names),
        "importance": attribution.importance,
    }
    if attribution.spread is not None:
        table["spread"] = attribution.spread
    if attribution.sources is not None:
        table["modality"] = list(attribution.sources)
    pl.DataFrame(table).sort("importance", descending=True).write_parquet(folder / f"{name}.parquet")
    if attribution.per_patient is not None:
        frame = pl.DataFrame(attribution.per_patient, schema=list(attribution.feature_names), orient="row")
        frame.insert_column(0, pl.Series("patient_id", list(attribution.ids)))
        frame.write_parquet(folder / f"{name}-patients.parquet")

