"""OMOP CDM tables (or one long events table) into one lazy events frame, checked as it is read.

Columns of the events frame: person (Int64), day (Int32, days since 1970-01-01),
domain (condition, drug, procedure, measurement, observation), concept (Int64),
value (Float64), unit (String), text (String; observation values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tumorboard.api import DataError

# table -> (date column, concept column, value column, unit column, text column)
DOMAINS = {
    "condition_occurrence": ("condition", "condition_start_date", "condition_concept_id", None, None, None),
    "drug_exposure": ("drug", "drug_exposure_start_date", "drug_concept_id", None, None, None),
    "procedure_occurrence": ("procedure", "procedure_date", "procedure_concept_id", None, None, None),
    "measurement": ("measurement", "measurement_date", "measurement_concept_id", "value_as_number", "unit_source_value", None),
    "observation": ("observation", "observation_date", "observation_concept_id", "value_as_number", None, "value_as_string"),
}
PERSON_COLUMNS = ("person_id", "gender_concept_id", "year_of_birth")
NOTE_COLUMNS = ("person_id", "note_date", "note_text")


def find_table(folder: Path, table: str) -> Path | None:
    """``table``.parquet / .csv / .tsv in ``folder``, any letter case (Synthea writes MEASUREMENT.csv)."""
    by_name = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    for suffix in (".parquet", ".csv", ".tsv"):
        if (table + suffix) in by_name:
            return by_name[table + suffix]
    return None


def scan(path: Path, columns: list[str], table: str) -> pl.LazyFrame:
    """Scan only ``columns`` of a table lazily; a missing column is an error naming table and column."""
    if path.suffix.lower() == ".parquet":
        schema = pl.read_parquet_schema(path)
        frame = pl.scan_parquet(path)
    else:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        frame = pl.scan_csv(path, separator=sep, infer_schema=False)  # all text; typed below
        schema = frame.collect_schema()
    lower = {c.lower(): c for c in schema}
    missing = [c for c in columns if c not in lower]
    if missing:
        raise DataError(f"{path}: OMOP table {table!r} lacks required column(s) {', '.join(missing)}; "
                        f"it has {', '.join(list(schema)[:12])}{'...' if len(schema) > 12 else ''}")
    return frame.select([pl.col(lower[c]).alias(c) for c in columns])




def to_day(column: str) -> pl.Expr:
    """A date or datetime column (text or typed) as days since 1970; unparseable values become null."""
    return pl.col(column).cast(pl.String).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).cast(pl.Int32)


def check_dates(frame: pl.DataFrame, column: str, raw: str, path: Path) -> None:
    bad = frame.filter(pl.col(column).is_null() & pl.col(raw).is_not_null())
    if bad.height:
        raise DataError(f"{path}: column {raw!r} holds {bad.height} value(s) that are not dates "
                        f"(YYYY-MM-DD), e.g. {bad[raw][0]!r}; fix or remove those rows")


@dataclass
class Source:
    """What the loader found and read."""

    events: pl.DataFrame
    persons: pl.DataFrame  # person, patient_id, female, year_of_birth
    notes: pl.DataFrame  # person, day, text
    files: list[Path]
    report: list[str]
    names: dict[int, str] = field(default_factory=dict)


def read_omop(folder: Path, id_source: str) -> Source:
    """Read the OMOP tables present in ``folder`` (person is required; others optional)."""
    files, report, parts = [], [], []
    person_path = find_table(folder, "person")
    if person_path is None:
        raise DataError(f"{folder}: no person table (person.csv or person.parquet); it is required to map patients")
    cols = list(PERSON_COLUMNS) + ([id_source] if id_source != "person_id" else [])
    persons = scan(person_path, cols, "person").collect()
    files.append(person_path)
    persons = persons.with_columns(pl.col("person_id").cast(pl.Int64), pl.col("gender_concept_id").cast(pl.Int64),
                                   pl.col("year_of_birth").cast(pl.Int32))
    dup = persons.filter(pl.col("person_id").is_duplicated())
    if dup.height:
        raise DataError(f"{person_path}: person_id {dup['person_id'][0]} appears {int((persons['person_id'] == dup['person_id'][0]).sum())} "
                        f"times ({dup['person_id'].n_unique()} duplicated person(s)); keep one row per person")
    persons = persons.select(
        pl.col("person_id").alias("person"),
        pl.col(id_source).cast(pl.String).alias("patient_id"),
        (pl.col("gender_concept_id") == 8532).cast(pl.Float64).alias("female"),
        pl.col("year_of_birth"),
    )
    for table, (domain, date_col, concept_col, value_col, unit_col, text_col) in DOMAINS.items():
        path = find_table(folder, table)
        if path is None:
            continue
        files.append(path)
        wanted = ["person_id", date_col, concept_col] + [c for c in (value_col, unit_col, text_col) if c]
        raw = scan(path, wanted, table).collect()
        if raw.height == 0:
            report.append(f"{path.name}: empty table, no {domain} features")
            continue
        typed = raw.with_columns(to_day(date_col).alias("__day"))
        check_dates(typed, "__day", date_col, path)
        parts.append(typed.select(
            pl.col("person_id").cast(pl.Int64).alias("person"),
            pl.col("__day").alias("day"),
            pl.lit(domain, dtype=pl.Categorical).alias("domain"),  # 4 bytes a row, not a string
            pl.col(concept_col).cast(pl.Int64).alias("concept"),
            (pl.col(value_col).cast(pl.Float64, strict=False) if value_col else pl.lit(None, pl.Float64)).alias("value"),
            (pl.col(unit_col).cast(pl.String) if unit_col else pl.lit(None, pl.String)).alias("unit"),
            (pl.col(text_col).cast(pl.String) if text_col else pl.lit(None, pl.String)).alias("text"),
        ))
    events = pl.concat(parts) if parts else pl.DataFrame(schema=EVENT_SCHEMA)
    note_path = find_table(folder, "note")
    notes = pl.DataFrame(schema={"person": pl.Int64, "day": pl.Int32, "text": pl.String})
    if note_path is not None:
        files.append(note_path)
        raw = scan(note_path, list(NOTE_COLUMNS), "note").collect()
        if raw.height:
            typed = raw.with_columns(to_day("note_date").alias("__day"))
            check_dates(typed, "__day", "note_date", note_path)
            notes = typed.select(pl.col("person_id").cast(pl.Int64).alias("person"), pl.col("__day").alias("day"),
                                 pl.col("note_text").cast(pl.String).alias("text"))
        else:
            report.append(f"{note_path.name}: empty table, no note features")
    return Source(events, persons, notes, files, report)


EVENT_SCHEMA = {"person": pl.Int64, "day": pl.Int32, "domain": pl.Categorical, "concept": pl.Int64,
                "value": pl.Float64, "unit": pl.String, "text": pl.String}


def read_long_events(path: Path, columns: dict[str, str]) -> Source:
    """One long table: patient id, time, code, value, unit (column names from the options).

    One lazy query reads, types and codes the table (polars runs its parts in
    parallel); categorical codes number patients and codes without joining
    millions of strings.
    """
    wanted = [columns[k] for k in ("patient_id", "time", "code", "value", "unit") if columns.get(k)]
    lf = scan(path, wanted, "events")
    time_col = columns["time"]
    typed = lf.collect_schema()[time_col] in (pl.Date, pl.Datetime)
    day = pl.col(time_col).cast(pl.Date).cast(pl.Int32) if typed else to_day(time_col)  # typed dates need no parsing

    def coded(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String).cast(pl.Categorical)

    events = lf.select(
        coded(columns["patient_id"]).alias("_patient"),
        day.alias("day"),
        pl.lit("measurement", dtype=pl.Categorical).alias("domain"),
        coded(columns["code"]).alias("_code"),
        (pl.col(columns["value"]).cast(pl.Float64, strict=False) if columns.get("value") else pl.lit(None, pl.Float64)).alias("value"),
        # categorical: 4 bytes a row; units are a handful of strings
        (coded(columns["unit"]) if columns.get("unit") else pl.lit(None, pl.String)).alias("unit"),
        pl.lit(None, pl.String).alias("text"),
        *([] if typed else [pl.col(time_col)]),
    ).collect()
    # the distinct ids and codes come from the coded columns already in memory: a second
    # and third scan of the file for them cost more than the whole first one
    ids, codes = events["_patient"].unique().alias("c").to_frame(), events["_code"].unique().alias("c").to_frame()
    events = events.select(
        pl.col("_patient").to_physical().cast(pl.Int64).alias("person"), "day", "domain",
        pl.col("_code").to_physical().cast(pl.Int64).alias("concept"), pl.exclude("_patient", "day", "domain", "_code"))
    if not typed:
        check_dates(events, "day", time_col, path)
        events = events.drop(time_col)
    persons = pl.DataFrame({"person": ids["c"].to_physical().cast(pl.Int64), "patient_id": ids["c"].cast(pl.String)}).with_columns(
        pl.lit(None, pl.Float64).alias("female"), pl.lit(None, pl.Int32).alias("year_of_birth"))
    notes = pl.DataFrame(schema={"person": pl.Int64, "day": pl.Int32, "text": pl.String})
    names = dict(zip(codes["c"].to_physical().cast(pl.Int64).to_list(), codes["c"].cast(pl.String).to_list(), strict=True))
    return Source(events, persons, notes, [path], [], names)
