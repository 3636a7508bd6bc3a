"""Applying a saved run's pipeline to new patients (``tumorboard predict``)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import polars as pl

from .errors import DataError, RunError
from .pipeline import Pipeline
from .plugins import load_plugins
from .spec import load_spec
from .tables import read_table


def predict_new(run_dir: Path, data: Path, extra_modules: list[str] | tuple[str, ...] = ()) -> pl.DataFrame:
    """Predict for the patients described by ``data``.

    ``data`` is either a spec file whose ``[[modality]]`` tables (matched by
    name) point at the new files, or a folder holding files laid out as the
    original spec named them (its relative paths are resolved in that folder).
    Patients are those of the data's outcomes table when it has one, else every
    patient any modality holds.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "pipeline" / "manifest.json").is_file():
        raise RunError(f"{run_dir}: not a finished run directory (no pipeline/manifest.json)")
    original = tomllib.loads((run_dir / "spec.toml").read_text(encoding="utf-8"))
    modules = [*original.get("plugins", {}).get("modules", []), *extra_modules]
    data = Path(data)
    if data.is_file():
        loaded = load_spec(data, list(extra_modules), check_files=True)
        base_dir = loaded.base_dir
        options = {m.name: m.options for m in loaded.spec.modality}
        registry = loaded.registry
        outcomes = loaded.resolve(loaded.spec.cohort.outcomes)
        id_column = loaded.spec.cohort.id
    elif data.is_dir():
        base_dir = data.resolve()
        options = None
        registry = load_plugins(modules, search_paths=[base_dir])
        cohort = original.get("cohort", {})
        outcomes = base_dir / cohort.get("outcomes", "")
        id_column = cohort.get("id", "patient_id")
    else:
        raise DataError(f"--data {data}: no such spec file or folder")

    manifest = json.loads((run_dir / "pipeline" / "manifest.json").read_text(encoding="utf-8"))
    pipeline = Pipeline.load(run_dir / "pipeline", registry, base_dir, options)
    if outcomes.is_file():
        ids = read_table(outcomes, id_column)[id_column].to_list()
    else:
        found: set[str] = set()
        for _, modality in pipeline.modalities:
            found |= modality.available_ids() or set()
        ids = sorted(found)
    if not ids:
        raise DataError(f"{data}: no patients found in the new data")
    task, classes = manifest["task"], manifest.get("classes", [])
    pred = pipeline.predict(ids, task, len(classes) if task == "multiclass" else 0)
    frame = {"patient_id": ids}
    if task == "multiclass":
        frame["y_pred"] = [classes[k] for k in np.argmax(pred, axis=1)]
        for k, label in enumerate(classes):
            frame[f"p_{label}"] = pred[:, k]
    else:
        frame["y_pred"] = pred
    return pl.DataFrame(frame)
