"""Reading tables keyed by patient id (CSV, TSV, Parquet), with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from .errors import DataError

SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".parquet": "parquet", ".pq": "parquet"}


def row_label(path: Path, row: int) -> str:
    """How a person finds 0-based data row ``row``: a line of a text file, a row of Parquet."""
    if SUFFIXES.get(Path(path).suffix.lower()) == "parquet":
        return f"row {row + 1}"
    return f"line {row + 2}"  # the header is line 1


def table_columns(path: Path) -> list[str]:
    """A table's column names, from its header or schema only (no rows read)."""
    kind = SUFFIXES.get(Path(path).suffix.lower())
    try:
        if kind == "parquet":
            return list(pl.read_parquet_schema(path))
        if kind is not None:
            return pl.read_csv(path, separator="," if kind == "csv" else "\t", n_rows=0).columns
    except (FileNotFoundError, pl.exceptions.PolarsError, OSError):
        pass
    return []  # read_table names the problem


def read_table(path: Path, id_column: str | None = None) -> pl.DataFrame:
    """Read a whole table; the id column (when given) must exist and is read as text.

    Ids are text everywhere in tumorboard, so ``007`` in one file and ``7``
    in another never silently match or mismatch.
    """
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported table format {path.suffix!r}; use .csv, .tsv or .parquet")
    try:
        if kind == "parquet":
            frame = pl.read_parquet(path)
        else:
            overrides = {id_column: pl.String} if id_column else None
            frame = pl.read_csv(
                path,
                separator="," if kind == "csv" else "\t",
                schema_overrides=overrides,
                infer_schema_length=10_000,
                null_values=["", "NA", "NaN", "nan", "null", "NULL"],
            )
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except (pl.exceptions.PolarsError, OSError) as err:
        raise DataError(f"{path}: cannot read as {kind}: {err}") from err
    if id_column is not None:
        if id_column not in frame.columns:
            raise DataError(
                f"{path}: no id column {id_column!r}; columns are {', '.join(frame.columns[:20])}"
                f" (set the id column option to one of them)"
            )
        frame = frame.with_columns(pl.col(id_column).cast(pl.String))
        if frame[id_column].null_count():
            row = int(frame[id_column].is_null().arg_max())  # type: ignore[arg-type]
            raise DataError(f"{path}: {row_label(path, row)} has no patient id in column {id_column!r}")
    return frame


def check_unique_ids(frame: pl.DataFrame, id_column: str, path: Path) -> None:
    """Duplicated patient ids are an error naming a few of them and their rows."""
    dup = frame.with_row_index("__row").filter(pl.col(id_column).is_duplicated())
    if dup.height:
        first = dup.group_by(id_column, maintain_order=True).agg(pl.col("__row")).head(3)
        examples = "; ".join(
            f"{pid!r} at {', '.join(row_label(path, r) for r in rows[:4])}"
            for pid, rows in first.iter_rows()
        )
        n = dup[id_column].n_unique()
        raise DataError(
            f"{path}: {n} patient id(s) appear more than once in column {id_column!r} ({examples}); "
            f"keep one row per patient"
        )
