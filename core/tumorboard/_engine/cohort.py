"""Loading the outcomes table into a ``Cohort``, checking it the way a statistician would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from .data import Cohort, Target
from .errors import DataError
from .tables import check_unique_ids, read_table, row_label


def _column(frame: pl.DataFrame, name: str, path: Path, field: str) -> pl.Series:
    if name not in frame.columns:
        close = [c for c in frame.columns if c.lower() == name.lower()]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(
            f"{path}: no column {name!r} (named by {field}){hint} "
            f"columns are: {', '.join(frame.columns[:30])}"
        )
    return frame[name]


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def build_target(frame: pl.DataFrame, task: str, target: str | list[str], path: Path) -> Target:
    """Turn target column(s) into a ``Target``; every bad cell is named with its row."""
    if task == "survival":
        time_col, event_col = target  # type: ignore[misc]
        time = _column(frame, time_col, path, "cohort.target[0]")
        event = _column(frame, event_col, path, "cohort.target[1]")
        try:
            t = time.cast(pl.Float64).to_numpy()
            e = event.cast(pl.Float64).to_numpy()
        except pl.exceptions.PolarsError as err:
            raise DataError(f"{path}: survival columns {time_col!r}/{event_col!r} must be numeric") from err
        for name, arr in ((time_col, t), (event_col, e)):
            if np.isnan(arr).any():
                r = _first_bad(np.isnan(arr))
                raise DataError(f"{path}: {row_label(path, r)} has no value in {name!r}; drop the patient or fill it in")
        if (t <= 0).any():
            r = _first_bad(t <= 0)
            raise DataError(f"{path}: {row_label(path, r)}: survival time {float(t[r])!r} in {time_col!r} must be > 0")
        if not np.isin(e, (0, 1)).all():
            r = _first_bad(~np.isin(e, (0, 1)))
            raise DataError(f"{path}: {row_label(path, r)}: event {float(e[r])!r} in {event_col!r} must be 0 (censored) or 1 (event)")
        if not (e == 1).any():
            raise DataError(f"{path}: no patient has an event (every value of {event_col!r} is 0); survival models and "
                            "the C-index need events: check that 1 marks an event and 0 a censored patient")
        return Target("survival", t, e.astype(np.int64))

    column = _column(frame, target, path, "cohort.target")  # type: ignore[arg-type]
    if column.null_count():
        r = int(column.is_null().arg_max())  # type: ignore[arg-type]
        raise DataError(
            f"{path}: {row_label(path, r)} has no value in target column {target!r}; "
            f"{column.null_count()} patient(s) lack the target: drop them or fill it in"
        )
    if task == "regression":
        try:
            values = column.cast(pl.Float64).to_numpy()
        except pl.exceptions.PolarsError as err:
            raise DataError(f"{path}: target column {target!r} must be numeric for a regression task") from err
        if not np.isfinite(values).all():
            r = _first_bad(~np.isfinite(values))
            raise DataError(f"{path}: {row_label(path, r)}: target {float(values[r])!r} is not finite")
        return Target("regression", values)

    labels = column.cast(pl.String).to_list()
    classes = sorted(set(labels), key=_label_order)
    if task == "binary" and len(classes) != 2:
        raise DataError(
            f"{path}: a binary task needs exactly 2 values in {target!r}; found {len(classes)}: "
            f"{', '.join(map(repr, classes[:10]))}"
        )
    if task == "multiclass" and len(classes) < 2:
        raise DataError(f"{path}: target column {target!r} has a single class {classes[0]!r}")
    code = {c: i for i, c in enumerate(classes)}
    values = np.array([code[v] for v in labels], dtype=np.int64)
    return Target(task, values, None, tuple(classes))  # type: ignore[arg-type]


def _label_order(label: str) -> tuple[int, float | str]:
    # numeric labels in numeric order, so "0"/"1" map to negative/positive
    try:
        return (0, float(label))
    except ValueError:
        lowered = label.lower()
        negatives = {"no": 0, "false": 0, "negative": 0, "non-responder": 0, "nonresponder": 0}
        return (1, "" if lowered in negatives else lowered)


def load_cohort(
    path: Path,
    *,
    id_column: str,
    task: str,
    target: str | list[str],
    subgroups: list[str] = (),  # type: ignore[assignment]
    site: str | None = None,
    split_column: str | None = None,
) -> Cohort:
    """Read and check the outcomes table: unique ids, a usable target, named columns."""
    frame = read_table(path, id_column)
    if frame.height == 0:
        raise DataError(f"{path}: the outcomes table has no rows")
    check_unique_ids(frame, id_column, path)
    y = build_target(frame, task, target, path)
    groups = {}
    for name in subgroups:
        col = _column(frame, name, path, "cohort.subgroups")
        groups[name] = tuple(col.cast(pl.String).fill_null("(missing)").to_list())
    sites = None
    if site:
        sites = tuple(_column(frame, site, path, "cohort.site").cast(pl.String).fill_null("(missing)").to_list())
    split = None
    if split_column:
        col = _column(frame, split_column, path, "evaluation.split_column")
        if col.null_count():
            r = int(col.is_null().arg_max())  # type: ignore[arg-type]
            raise DataError(f"{path}: {row_label(path, r)} has no value in split column {split_column!r}")
        split = tuple(col.cast(pl.String).to_list())
    return Cohort(tuple(frame[id_column].to_list()), y, groups, sites, split)
