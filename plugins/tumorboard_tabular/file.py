"""``tabular.file``: one row per patient from a CSV/TSV/Parquet table, preprocessed on training patients."""

from __future__ import annotations

from collections import Counter
import functools
import warnings
from collections.abc import Sequence
from typing import Literal, Self

import numpy as np
import polars as pl
from pydantic import Field, PositiveInt

from tumorboard.api import (
    Options,
    ComponentError,
    DataError,
    FeatureBlock,
    InputPath,
    Modality,
    Target,
    TumorboardWarning,
    apply_numeric,
    check_unique_ids,
    fit_numeric,
    read_table,
    row_label,
)


class _Table:
    """The file as read once: numeric columns as a float matrix, text columns as strings."""

    def __init__(self, frame: pl.DataFrame, id_column: str, path, columns, exclude, categorical, coerce_text=False):
        self.path = path
        wanted = [c for c in (columns or frame.columns) if c != id_column and c not in exclude]
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: options.columns names missing column(s) {missing!r}; columns are {frame.columns}")
        self.ids = frame[id_column].to_list()
        self.row_of = {pid: i for i, pid in enumerate(self.ids)}
        self.numeric: list[str] = []
        self.text: list[str] = []
        schema = frame.schema  # built on each access: take it once, not per column
        for name in wanted:
            dtype = schema[name]
            if dtype.is_numeric() or dtype == pl.Boolean:
                self.numeric.append(name)
            elif _mostly_numeric(frame[name], path, name, coerce_text):
                # a few text cells ("n/a", "<5") in a numeric column: never a silent switch to categories
                frame = frame.with_columns(pl.col(name).cast(pl.Float64, strict=False))
                self.numeric.append(name)
            elif categorical == "error":
                raise DataError(
                    f"{path}: column {name!r} is not numeric ({dtype}); exclude it with "
                    f"options.exclude = [{name!r}] or set options.categorical = \"onehot\""
                )
            else:
                self.text.append(name)
        if not self.numeric and not self.text:
            raise DataError(f"{path}: no feature columns besides the id column {id_column!r}")
        self.matrix = (
            frame.select(pl.col(c).cast(pl.Float64) for c in self.numeric).to_numpy()
            if self.numeric
            else np.empty((frame.height, 0))
        )
        bad = np.isinf(self.matrix)
        if bad.any():
            r, c = (int(v[0]) for v in np.nonzero(bad))
            raise DataError(
                f"{path}: {row_label(path, r)}, column {self.numeric[c]!r} holds {float(self.matrix[r, c])!r}; "
                "features must be finite (leave the cell empty for a missing value)"
            )
        self.strings = {c: frame[c].cast(pl.String).to_list() for c in self.text}


def _mostly_numeric(column: pl.Series, path, name: str, coerce_text: bool) -> bool:
    """Whether a text column is numbers with a few text cells (at least 80% of its values parse).

    Such a column is an error naming the cells, unless ``coerce_text`` turns
    the text cells into missing values.
    """
    parsed = column.cast(pl.Float64, strict=False)
    text = column.is_not_null() & parsed.is_null()
    n_text, n_numbers = int(text.sum()), int(parsed.is_not_null().sum())
    if n_text == 0 or n_numbers < 4 * n_text:
        return False
    if coerce_text:
        return True
    rows = np.flatnonzero(text.to_numpy())
    cells = ", ".join(f"{row_label(path, int(r))} {column[int(r)]!r}" for r in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    raise DataError(
        f"{path}: column {name!r} holds numbers except for {n_text} text cell(s): {cells}{more}; fix those cells, "
        "or set options.coerce_text = true to read them as missing values"
    )


@functools.lru_cache(maxsize=16)
def _read(path, mtime_ns, size, id_column, columns, exclude, categorical, coerce_text=False) -> _Table:
    """Read and check a table once per file version (mtime and size are part of the key)."""
    frame = read_table(path, id_column)
    check_unique_ids(frame, id_column, path)
    return _Table(frame, id_column, path, columns, exclude, categorical, coerce_text)


def _not_a_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return True
    return False


class TabularFile(Modality):
    """Features from any CSV, TSV or Parquet table with one row per patient.

    Numeric columns are imputed (train median or mean, with missing-value
    indicators) and standardised with statistics of the training patients
    only; text columns are one-hot encoded with the categories seen in
    training. Patients not in the table are marked absent.
    """

    name = "tabular.file"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})

    class Options(Options):
        path: InputPath = Field(description="CSV, TSV or Parquet table, one row per patient.")
        id_column: str = Field("patient_id", description="Column holding patient ids.")
        columns: list[str] | None = Field(None, description="Use only these columns (default: all).")
        exclude: list[str] = Field(default_factory=list, description="Columns to leave out.")
        categorical: Literal["onehot", "error"] = Field(
            "onehot", description="Text columns: one-hot encode, or refuse them."
        )
        max_categories: PositiveInt = Field(20, description="Most frequent training categories kept per text column.")
        min_category_count: PositiveInt = Field(
            5, description="A category needs this many training patients to become a feature (rare values can identify people)."
        )
        coerce_text: bool = Field(
            False, description="Read text cells in a mostly numeric column (e.g. 'n/a', '<5') as missing values "
            "instead of stopping with an error that names them.")
        impute: Literal["median", "mean"] = Field("median", description="Fill value learned on training patients.")
        missing_indicators: bool = Field(True, description="Add COLUMN__missing for columns with gaps in training.")
        scale: bool = Field(True, description="Standardise numeric columns with training mean and SD.")

    def _load(self) -> _Table:
        # reading is not learning: the raw table is shared by every fold's copy
        # of this component; the statistics in fit() are recomputed each time
        o = self.options
        stat = o.path.stat()
        return _read(o.path, stat.st_mtime_ns, stat.st_size, o.id_column,
                     tuple(o.columns) if o.columns is not None else None, tuple(o.exclude), o.categorical,
                     o.coerce_text)

    def available_ids(self) -> set[str]:
        return set(self._load().ids)

    def _rows(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        table = self._load()
        rows = np.array([table.row_of.get(str(i), -1) for i in ids], dtype=np.int64)
        return rows, rows >= 0

    def fit(self, ids: Sequence[str], y: Target) -> Self:
        if len(ids) != len(y):
            raise ComponentError(f"{self.name}: fit() got {len(ids)} ids but {len(y)} target values")
        table = self._load()
        rows, present = self._rows(ids)
        train = table.matrix[rows[present]]
        if len(train) == 0:
            raise DataError(f"{table.path}: none of the {len(ids)} training patients is in this table")
        stats = fit_numeric(train, impute=self.options.impute, scale=self.options.scale)
        self.numeric_columns_ = list(table.numeric)
        self.fill_, self.mean_, self.scale_ = stats.fill, stats.mean, stats.scale
        self.indicator_columns_ = (
            [c for c, gap in zip(table.numeric, stats.gaps, strict=True) if gap]
            if self.options.missing_indicators
            else []
        )
        self.categories_ = {}
        for column in table.text:
            counts = Counter(table.strings[column][r] for r in rows[present])
            counts.pop(None, None)
            if len(counts) > max(self.options.max_categories, 0.5 * len(train)):
                # mostly-unique text (names, record numbers) must never become
                # feature names that travel into reports and saved pipelines
                warnings.warn(
                    f"{table.path}: column {column!r} looks like an identifier ({len(counts)} distinct values "
                    f"in {len(train)} training rows) and is left out; list it in options.exclude",
                    TumorboardWarning,
                    stacklevel=2,
                )
                self.categories_[column] = []
                continue
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            kept = [level for level, n in ranked if n >= self.options.min_category_count]
            self.categories_[column] = kept[: self.options.max_categories]
        self.feature_names_ = (
            list(table.numeric)
            + [f"{c}={level}" for c, levels in self.categories_.items() for level in levels]
            + [f"{c}__missing" for c in self.indicator_columns_]
        )
        return self

    def _check_columns(self, table: _Table) -> None:
        """New data must hold every column the pipeline was fitted on, of the same kind."""
        for column in self.numeric_columns_:
            if column in table.text:
                values = table.strings[column]
                row = next((r for r, v in enumerate(values) if v is not None and _not_a_number(v)), 0)
                raise DataError(
                    f"{table.path}: {row_label(table.path, row)}, column {column!r} holds {values[row]!r}, but the "
                    "pipeline was fitted on numbers in this column; fix the cell (leave it empty when missing)"
                )
        missing = [c for c in [*self.numeric_columns_, *self.categories_] if c not in table.numeric and c not in table.text]
        if missing:
            raise DataError(
                f"{table.path}: column(s) {missing!r} that the pipeline was fitted on are missing; add them "
                "(empty cells where a value is unknown)"
            )

    def transform(self, ids: Sequence[str]) -> FeatureBlock:
        self.check_is_fitted()
        table = self._load()
        self._check_columns(table)
        if table.numeric != self.numeric_columns_:
            raise DataError(
                f"{table.path}: numeric columns {table.numeric!r} differ from those the pipeline was fitted "
                f"on {self.numeric_columns_!r}"
            )
        rows, present = self._rows(ids)
        n = len(ids)
        raw = np.full((n, len(self.numeric_columns_)), np.nan)
        raw[present] = table.matrix[rows[present]]
        unbounded = np.full(len(self.fill_), np.inf)
        numeric = apply_numeric(raw, -unbounded, unbounded, self.fill_, self.mean_, self.scale_)
        parts = [numeric]
        for column, levels in self.categories_.items():
            values = table.strings.get(column)
            onehot = np.zeros((n, len(levels)))
            if values is not None:
                for k, level in enumerate(levels):
                    onehot[present, k] = [values[r] == level for r in rows[present]]
            parts.append(onehot)
        index = {c: j for j, c in enumerate(self.numeric_columns_)}
        parts.append(np.stack([np.isnan(raw[:, index[c]]) for c in self.indicator_columns_], axis=1)
                     if self.indicator_columns_ else np.zeros((n, 0)))
        values = np.concatenate(parts, axis=1)
        values[~present] = np.nan
        return FeatureBlock(tuple(ids), values, tuple(self.feature_names_), present, self.name)
