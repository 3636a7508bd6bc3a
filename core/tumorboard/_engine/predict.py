"""Applying a saved run's pipeline to new patients (``tumorboard predict``).

The run directory is untrusted: it is checked against its completion manifest
and nothing in it causes an import (its spec's ``[plugins]`` are never
replayed; only installed plugins and those named with ``--plugin`` load).
"""

from __future__ import annotations

import json
import tomllib
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from .components import in_data_root
from .errors import DataError, RunError, TumorboardWarning
from .pipeline import Pipeline
from .plugins import load_plugins, split_command_line_plugins
from .rundir import run_and_inputs, verify_run
from .spec import load_spec
from .tables import read_table

NO_DATA = "no data in any modality"


def predict_new(run_dir: Path, data: Path, extra_modules: list[str] | tuple[str, ...] = ()) -> pl.DataFrame:
    """Predict for the patients described by ``data``.

    ``data`` is either a spec file whose ``[[modality]]`` tables (matched by
    name) point at the new files, or a folder holding files laid out as the
    original spec named them (relative paths resolve in that folder; absolute
    ones are mapped there by file name or refused). Patients are those of the
    data's outcomes table when it has one, else every patient any modality
    holds. A patient with no data in any modality gets no prediction
    (``y_pred`` null, the reason in ``note``) and a warning with the count.
    """
    run_dir = Path(run_dir)
    verify_run(run_dir)
    if not (run_dir / "pipeline" / "manifest.json").is_file():
        raise RunError(f"{run_dir}: not a finished run directory (no pipeline/manifest.json)")
    try:
        original = tomllib.loads((run_dir / "spec.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise RunError(f"{run_dir / 'spec.toml'}: cannot read the run's spec ({err}); run the spec again") from err
    # installed plugins and what the user names on this command line, never the run's own [plugins]
    registry = load_plugins(*split_command_line_plugins(extra_modules))
    data = Path(data)
    data_root = None
    if data.is_file():
        loaded = load_spec(data, registry=registry, check_files=True)
        base_dir = loaded.base_dir
        options = {m.name: m.options for m in loaded.spec.modality}
        outcomes = loaded.resolve(loaded.spec.cohort.outcomes)
        id_column = loaded.spec.cohort.id
    elif data.is_dir():
        base_dir = data_root = data.resolve()
        options = None
        cohort = original.get("cohort", {})
        # the outcomes table is optional for new patients: looked up inside the folder, used when there
        outcomes = in_data_root((base_dir / cohort["outcomes"]).resolve(), base_dir) if cohort.get("outcomes") else base_dir
        id_column = cohort.get("id", "patient_id")
    else:
        raise DataError(f"--data {data}: no such spec file or folder")

    manifest = json.loads((run_dir / "pipeline" / "manifest.json").read_text(encoding="utf-8"))
    pipeline = Pipeline.load(run_dir / "pipeline", registry, base_dir, options, data_root=data_root)
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
    has_data = np.zeros(len(ids), dtype=bool)
    for block in pipeline.blocks(ids):  # transformed once: predict() below takes the scored rows from these
        has_data |= np.asarray(block.presence, dtype=bool)
    scored = [pid for pid, ok in zip(ids, has_data, strict=True) if ok]
    if len(scored) < len(ids):
        warnings.warn(f"{len(ids) - len(scored)} of {len(ids)} patients have {NO_DATA} and get no prediction "
                      "(y_pred is empty for them; see the note column)", TumorboardWarning, stacklevel=2)
    n_classes = len(classes) if task == "multiclass" else 0
    pred = pipeline.predict(scored, task, n_classes) if scored else np.empty((0, n_classes) if n_classes else (0,))
    row = {pid: k for k, pid in enumerate(scored)}

    def column(values: list) -> list:
        return [values[row[pid]] if pid in row else None for pid in ids]

    frame: dict[str, list] = {"patient_id": ids}
    if task == "multiclass":
        frame["y_pred"] = column([classes[k] for k in np.argmax(pred, axis=1)])
        for k, label in enumerate(classes):
            frame[f"p_{label}"] = column([float(v) for v in pred[:, k]])
    else:
        frame["y_pred"] = column([float(v) for v in pred])
    frame["note"] = [None if pid in row else NO_DATA for pid in ids]
    return pl.DataFrame(frame, schema_overrides={"note": pl.String})


def protected_paths(run_dir: Path, data: Path) -> list[Path]:
    """What ``predict --out`` must never write over: the run, the run's inputs, and the new data."""
    data = Path(data)
    paths = [*run_and_inputs(run_dir), data]
    if data.is_file():
        try:
            raw = tomllib.loads(data.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return paths
        values = [raw.get("cohort", {}).get("outcomes")]
        for table in raw.get("modality", []):
            values += [v for v in table.get("options", {}).values() if isinstance(v, str)]
        for value in values:
            if isinstance(value, str) and (data.parent / value).exists():
                paths.append(data.parent / value)
    return paths
