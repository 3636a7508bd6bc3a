"""Omics layer matrices (CSV, TSV or Parquet), read once and checked.

A layer is a patients x features matrix (or features x patients, with
``orientation``). Every check names the file and, where it can, the row and
column and the fix.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, PositiveInt
from tumorboard.api import Options, DataError, InputPath, read_table, row_label


class LayerSpec(Options):
    """One omics layer: a name, a matrix file, and its preprocessing."""
    name: str = Field(description="Layer name (mutation, cnv, rna, methylation, protein, metabolite, mirna, ...).")
    path: InputPath = Field(description="CSV, TSV or Parquet matrix.")
    orientation: Literal["patients_by_features", "features_by_patients"] = Field(
        "patients_by_features",
        description="patients_by_features: one row per patient, id in id_column; features_by_patients: "
        "one row per feature (name in the first column), one column per patient.")
    id_column: str = Field("patient_id", description="Column of patient ids (patients_by_features).")
    log1p: bool = Field(False, description="log(1 + x) before anything else (counts, intensities).")
    top_k: PositiveInt | None = Field(
        2000, description="Keep the k features ranked highest on training patients (see the modality's select).")
    scale: bool = Field(True, description="Standardise with training mean and SD.")


@dataclass
class Layer:
    """A layer as read: ids, feature names, and a float matrix (NaN = missing cell)."""

    name: str
    path: Path
    ids: list[str]
    features: list[str]
    matrix: np.ndarray
    report: list[str]

    @functools.cached_property
    def row_of(self) -> dict[str, int]:
        return {pid: i for i, pid in enumerate(self.ids)}


def _numeric(frame: pl.DataFrame, columns: list[str], path: Path, label) -> np.ndarray:
    """The columns as one float matrix; a cell that is not a number is an error naming it."""
    parsed = []
    for column in columns:
        series = frame[column]
        if series.dtype.is_numeric() or series.dtype in (pl.Boolean, pl.Null):
            parsed.append(series.cast(pl.Float64))
            continue
        values = series.cast(pl.String)
        numbers = values.str.strip_chars().cast(pl.Float64, strict=False)
        bad = numbers.is_null() & values.is_not_null()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise DataError(f"{path}: {label(row, column)} holds {values[row]!r}, which is not a number; "
                            "omics matrices must be numeric (leave the cell empty or write NA for a missing value)")
        parsed.append(numbers)
    return pl.DataFrame(parsed).to_numpy() if parsed else np.empty((frame.height, 0))


def read_layer(spec: LayerSpec) -> Layer:
    """The layer's matrix, cached per file version and reading options."""
    stat = Path(spec.path).stat()
    return _read(spec.name, Path(spec.path), stat.st_mtime_ns, stat.st_size, spec.orientation, spec.id_column)


def _header(path: Path) -> list[str]:
    """The raw header of a text table (polars renames repeated names, which would hide them)."""
    import csv

    if path.suffix.lower() == ".parquet":
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ","), [])


@functools.lru_cache(maxsize=32)
def _read(name: str, path: Path, _mtime: int, _size: int, orientation: str, id_column: str) -> Layer:
    if orientation == "features_by_patients":
        frame = read_table(path)
        first = frame.columns[0]
        features = frame[first].cast(pl.String).to_list()
        ids = list(frame.columns[1:])
        matrix = _numeric(frame, ids, path,
                          lambda row, column: f"feature {features[row]!r} (row {row + 2}), patient column {column!r}").T
    else:
        frame = read_table(path, id_column)
        ids = frame[id_column].cast(pl.String).to_list()
        features = [c for c in frame.columns if c != id_column]
        matrix = _numeric(frame, features, path,
                          lambda row, column: f"{row_label(path, row)} (patient {ids[row]!r}), column {column!r}")
    if not features:
        raise DataError(f"{path}: layer {name!r} has no feature columns")
    seen: set[str] = set()
    names = features if orientation == "features_by_patients" else _header(path) or features
    dupes = sorted({f for f in names if f in seen or seen.add(f)})
    if dupes:
        raise DataError(f"{path}: layer {name!r} repeats feature name(s) {dupes[:5]!r}; "
                        "make feature names unique (for example GENE_cnv and GENE_mut)")
    seen = set()
    dup_ids = sorted({i for i in ids if i in seen or seen.add(i)})
    if dup_ids:
        raise DataError(f"{path}: layer {name!r} has more than one row for patient(s) {dup_ids[:5]!r}; "
                        "keep one row per patient")
    if np.isinf(matrix).any():
        r, c = (int(v[0]) for v in np.nonzero(np.isinf(matrix)))
        raise DataError(f"{path}: patient {ids[r]!r}, feature {features[c]!r} is infinite; features must be finite")
    report = []
    empty = np.isnan(matrix).all(axis=1)
    if empty.any():
        # a row of nothing but missing values says nothing: the patient lacks this layer
        report.append(f"{path}: {int(empty.sum())} patient(s) have only missing values in layer {name!r} "
                      f"(e.g. {[ids[i] for i in np.flatnonzero(empty)[:3]]!r}) and count as lacking it")
        ids = [i for i, e in zip(ids, empty, strict=True) if not e]
        matrix = matrix[~empty]
    return Layer(name, path, ids, features, np.ascontiguousarray(matrix), report)


def transposed_hint(layer: Layer, ids: list[str] | set[str], orientation: str) -> str | None:
    """A message when none of the layer's rows but some of its column names are these patients."""
    wanted = set(ids)
    if any(i in layer.row_of for i in wanted) or not set(layer.features) & wanted:
        return None
    other = "features_by_patients" if orientation == "patients_by_features" else "patients_by_features"
    return (f"{layer.path}: layer {layer.name!r} looks transposed: none of its {len(layer.ids)} rows is a cohort "
            f"patient, but its column names are (far more rows than plausible patients: {len(layer.ids)} rows "
            f"against {len(layer.features)} columns); set orientation = \"{other}\" for this layer")


def check_orientation(layer: Layer, ids: list[str], orientation: str) -> None:
    """Refuse a layer none of whose rows is one of these (training) patients, saying why where we can."""
    if any(i in layer.row_of for i in ids):
        return
    hint = transposed_hint(layer, ids, orientation)
    if hint:
        raise DataError(hint)
    raise DataError(
        f"{layer.path}: none of the {len(layer.ids)} ids of layer {layer.name!r} (e.g. {layer.ids[:3]!r}) is a "
        f"training patient (e.g. {ids[:3]!r}); check the id column and that ids are spelled as in the outcomes table")
