"""MEDS datasets (Medical Event Data Standard, meds 0.4) in and out.

A MEDS dataset is a folder: ``data/**/*.parquet`` shards of events
(``subject_id``, ``time``, ``code``, ``numeric_value``, ``text_value`` and any
extra columns), ``metadata/codes.parquet`` (``code``, ``description``,
``parent_codes``), ``metadata/subject_splits.parquet`` (``subject_id``,
``split``) and ``metadata/dataset.json``. Column names and types come from the
``meds`` package; every shard is checked before anything is read and a problem
names the file and column.

Reading is lazy: each shard is scanned for the columns the features need, and
only events of subjects in the cohort are collected. Conventions (docs/ehr.md):
``MEDS_BIRTH`` gives the year of birth, ``GENDER//F``/``GENDER//M`` (any case,
``SEX/...`` too) the sex, ``MEDS_DEATH`` and other events without a time are not
features (counted in the report). Units come from a ``unit`` column of the data
(a code modifier) or of ``codes.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from tumorboard.api import DataError

from .coded import CODE_TABLE, CODED_EVENTS, coded_source, sex_of
from .events import Source

UNIT_COLUMN = "unit"
# columns our writer adds to metadata/codes.parquet (MEDS allows extra columns there)
EXTRA_CODE_COLUMNS = ("omop_concept_id", "domain", UNIT_COLUMN)
NOTE_CODE = "NOTE"


def _meds():
    try:
        import meds  # the ``ehr`` extra; imported here so the OMOP path needs no MEDS
    except ImportError as exc:
        raise DataError('reading or writing MEDS needs the meds package (not installed): '
                        'pip install "tumorboard[ehr]"') from exc
    return meds


def _family(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "float"
    if dtype.is_temporal():
        return "time"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical):
        return "string"
    return str(dtype)


# what each MEDS column may be (the meds schema's type or one that casts to it without loss of meaning)
ACCEPTED = {"subject_id": {"integer"}, "time": {"time"}, "code": {"string"}, "numeric_value": {"float", "integer"},
            "text_value": {"string"}, UNIT_COLUMN: {"string"}}


def check_shard(path: Path) -> dict[str, pl.DataType]:
    """The shard's schema, after checking the MEDS columns; errors name the file, the column and the fix."""
    meds = _meds()
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem for the person
        raise DataError(f"{path}: not a readable Parquet file ({exc}); MEDS data shards are Parquet") from exc
    missing = [c for c in meds.DataSchema.required_columns() if c not in schema]
    if missing:
        raise DataError(f"{path}: MEDS data shard lacks required column(s) {', '.join(missing)}; it has "
                        f"{', '.join(schema)}. MEDS events need {', '.join(meds.DataSchema.required_columns())}")
    for column in [*meds.DataSchema.required_columns(), *meds.DataSchema.optional_columns(), UNIT_COLUMN]:
        if column in schema and _family(schema[column]) not in ACCEPTED[column]:
            want = meds.DataSchema.schema().field(column).type if column != UNIT_COLUMN else "string"
            raise DataError(f"{path}: MEDS column {column!r} is {schema[column]}, it should be {want}; "
                            "rewrite the shard with that type")
    return dict(schema)


def shards(root: Path) -> list[Path]:
    data = root / _meds().data_subdirectory
    if not data.is_dir():
        raise DataError(f"{root}: no {_meds().data_subdirectory}/ folder; a MEDS dataset keeps its event shards in "
                        f"{root / _meds().data_subdirectory}/**/*.parquet")
    found = sorted(p for p in data.rglob("*.parquet") if p.is_file())
    if not found:
        raise DataError(f"{data}: no .parquet shards; a MEDS dataset keeps its events in data/**/*.parquet")
    return found


def read_codes(root: Path) -> tuple[pl.DataFrame, Path | None]:
    path = root / _meds().code_metadata_filepath
    if not path.is_file():
        return pl.DataFrame(schema={**CODE_TABLE, UNIT_COLUMN: pl.String}), None
    schema = pl.read_parquet_schema(path)
    if "code" not in schema:
        raise DataError(f"{path}: MEDS code metadata needs a 'code' column; it has {', '.join(schema)}")
    wanted = [c for c in ("code", "description", *EXTRA_CODE_COLUMNS) if c in schema]
    codes = pl.read_parquet(path, columns=wanted)
    for column, dtype in {**CODE_TABLE, UNIT_COLUMN: pl.String}.items():
        if column not in codes.columns:
            codes = codes.with_columns(pl.lit(None, dtype).alias(column))
    try:
        codes = codes.with_columns(pl.col("code").cast(pl.String), pl.col("description").cast(pl.String),
                                   pl.col("omop_concept_id").cast(pl.Int64), pl.col("domain").cast(pl.String),
                                   pl.col(UNIT_COLUMN).cast(pl.String))
    except pl.exceptions.InvalidOperationError as exc:
        raise DataError(f"{path}: column omop_concept_id must hold integer OMOP concept ids ({exc})") from exc
    return codes, path


def read_subject_ids(path: Path) -> pl.DataFrame:
    """The link from MEDS subject ids to the cohort's patient ids (columns subject_id, patient_id)."""
    from tumorboard.api import read_table

    table = read_table(path, "patient_id")
    if "subject_id" not in table.columns:
        raise DataError(f"{path}: a subject id table needs columns subject_id and patient_id; it has "
                        f"{', '.join(table.columns)}")
    try:
        table = table.select(pl.col("subject_id").cast(pl.Int64), pl.col("patient_id").cast(pl.String))
    except pl.exceptions.InvalidOperationError as exc:
        raise DataError(f"{path}: column subject_id must hold the dataset's integer subject ids ({exc})") from exc
    dup = table.filter(pl.col("subject_id").is_duplicated())
    if dup.height:
        raise DataError(f"{path}: subject_id {dup['subject_id'][0]} is linked to more than one patient; keep one row each")
    return table


def read_meds(root: Path, subject_ids: Path | None, code_domains: dict[str, str]) -> tuple[Source, dict[str, int]]:
    """Read a MEDS dataset into the loader's Source (and each code's concept number)."""
    found = shards(root)
    frames = []
    for path in found:
        schema = check_shard(path)

        def optional(column: str, dtype: pl.DataType, schema=schema) -> pl.Expr:
            return pl.col(column).cast(dtype) if column in schema else pl.lit(None, dtype).alias(column)

        frames.append(pl.scan_parquet(path).select(
            pl.col("subject_id").cast(pl.Int64), pl.col("time").cast(pl.Datetime("us")), pl.col("code").cast(pl.String),
            optional("numeric_value", pl.Float64), optional("text_value", pl.String),
            optional(UNIT_COLUMN, pl.String)))
    report: list[str] = []
    lazy = pl.concat(frames)
    files = list(found)
    if subject_ids is not None:
        link = read_subject_ids(subject_ids)
        files.append(subject_ids)
        lazy = lazy.join(link.lazy(), on="subject_id", how="inner")  # subjects outside the cohort are not read further
    else:
        lazy = lazy.with_columns(pl.col("subject_id").cast(pl.String).alias("patient_id"))
    raw = lazy.collect()
    codes, codes_path = read_codes(root)
    if codes_path is not None:
        files.append(codes_path)
    meds = _meds()
    birth = raw.filter(pl.col("code") == meds.birth_code).group_by("patient_id").agg(
        pl.col("time").min().dt.year().cast(pl.Int32).alias("year_of_birth"))
    # sex codes: static (no time) in most ETLs, at birth in some; a code's meaning is looked up once, not per row
    codes_seen = raw["code"].unique()
    sex_codes = {c: v for c in codes_seen.to_list() if (v := sex_of(c)) is not None}
    is_sex = pl.col("code").is_in(list(sex_codes))
    sexes = (raw.filter(is_sex).sort("time", nulls_last=False)
             .select("patient_id", pl.col("code").replace_strict(sex_codes, return_dtype=pl.Float64).alias("female"))
             .unique("patient_id", keep="first", maintain_order=True))
    persons = (raw.select("patient_id").unique().join(birth, on="patient_id", how="left")
               .join(sexes, on="patient_id", how="left"))
    static = raw.filter(pl.col("time").is_null())
    timed = raw.filter(pl.col("time").is_not_null() & ~pl.col("code").is_in([meds.birth_code, meds.death_code]) & ~is_sex)
    other_static = static.filter(~is_sex).height
    if other_static:
        report.append(f"{root}: {other_static} event(s) without a time (other than sex) are not features")
    deaths = raw.filter(pl.col("code") == meds.death_code).height
    if deaths:
        report.append(f"{root}: {deaths} {meds.death_code} event(s) are outcomes, not features; they were not used")
    unit = pl.coalesce(pl.col(UNIT_COLUMN), pl.col("_meta_unit")) if codes[UNIT_COLUMN].null_count() < codes.height \
        else pl.col(UNIT_COLUMN)
    events = (timed.join(codes.select("code", pl.col(UNIT_COLUMN).alias("_meta_unit")), on="code", how="left")
              .select("patient_id", pl.col("time").dt.date().cast(pl.Int32).alias("day"), "code",
                      pl.col("numeric_value").alias("value"), unit.alias("unit"), pl.col("text_value").alias("text"),
                      pl.lit(None, pl.String).alias("domain")))
    try:
        return coded_source(events.cast(CODED_EVENTS), persons, codes.select(list(CODE_TABLE)), files, report, code_domains)
    except ValueError as exc:
        raise DataError(f"{codes_path or root}: {exc}; use one of the listed domains in the 'domain' column") from exc


# --- writing -------------------------------------------------------------------------------------------------------

def code_names(concepts: pl.DataFrame | None) -> pl.DataFrame:
    """OMOP concept id -> MEDS code ("LOINC/718-7") and description, from a concept table."""
    if concepts is None or concepts.height == 0:
        return pl.DataFrame(schema={"concept": pl.Int64, "code": pl.String, "description": pl.String})
    return concepts.select(pl.col("concept_id").cast(pl.Int64).alias("concept"),
                           (pl.col("vocabulary_id").cast(pl.String) + "/" + pl.col("concept_code").cast(pl.String)).alias("code"),
                           pl.col("concept_name").cast(pl.String).alias("description")).unique("concept", keep="first")


def coded_events(source: Source, concepts: pl.DataFrame | None) -> pl.DataFrame:
    """The Source's events with string codes (``OMOP/<id>`` where the concept table lacks the concept)."""
    table = code_names(concepts)
    events = source.events.with_columns(pl.col("domain").cast(pl.String)).join(table, on="concept", how="left")
    return events.with_columns(pl.coalesce("code", pl.lit("OMOP/") + pl.col("concept").cast(pl.String)).alias("code"))


def assign_splits(subjects: np.ndarray, fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    """train / tuning / held_out labels for ``subjects`` (a seeded random partition)."""
    meds = _meds()
    rng = np.random.default_rng([seed, 20])
    order = rng.permutation(len(subjects))
    cut = np.cumsum(np.round(np.array(fractions[:2]) * len(subjects)).astype(int))
    labels = np.empty(len(subjects), dtype=object)
    labels[order[:cut[0]]] = meds.train_split
    labels[order[cut[0]:cut[1]]] = meds.tuning_split
    labels[order[cut[1]:]] = meds.held_out_split
    return labels


def write_meds(source: Source, concepts: pl.DataFrame | None, out: Path, *, dataset_name: str,
               fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, int]:
    """Write ``source`` as a MEDS dataset in ``out`` (a new or empty folder); returns row counts.

    Subject ids are the Source's person numbers; where the cohort's patient ids
    differ, ``subject_ids.parquet`` beside data/ links them (read it back with the
    ``subject_ids`` option).
    """
    import pyarrow.parquet as pq

    meds = _meds()
    events = coded_events(source, concepts)
    day_time = (pl.col("day").cast(pl.Date).cast(pl.Datetime("us")))
    rows = [events.select(pl.col("person").alias("subject_id"), day_time.alias("time"), "code",
                          pl.col("value").cast(pl.Float32).alias("numeric_value"),
                          pl.col("text").alias("text_value"), pl.col("unit").cast(pl.String).alias(UNIT_COLUMN))]
    if source.notes.height:
        rows.append(source.notes.select(pl.col("person").alias("subject_id"), day_time.alias("time"),
                                        pl.lit(NOTE_CODE).alias("code"), pl.lit(None, pl.Float32).alias("numeric_value"),
                                        pl.col("text").alias("text_value"), pl.lit(None, pl.String).alias(UNIT_COLUMN)))
    persons = source.persons
    rows.append(persons.filter(pl.col("year_of_birth").is_not_null()).select(
        pl.col("person").alias("subject_id"),
        pl.date(pl.col("year_of_birth"), 1, 1).cast(pl.Datetime("us")).alias("time"),
        pl.lit(meds.birth_code).alias("code"), pl.lit(None, pl.Float32).alias("numeric_value"),
        pl.lit(None, pl.String).alias("text_value"), pl.lit(None, pl.String).alias(UNIT_COLUMN)))
    rows.append(persons.filter(pl.col("female").is_not_null()).select(
        pl.col("person").alias("subject_id"), pl.lit(None, pl.Datetime("us")).alias("time"),
        pl.when(pl.col("female") == 1).then(pl.lit("GENDER//F")).otherwise(pl.lit("GENDER//M")).alias("code"),
        pl.lit(None, pl.Float32).alias("numeric_value"), pl.lit(None, pl.String).alias("text_value"),
        pl.lit(None, pl.String).alias(UNIT_COLUMN)))
    data = pl.concat(rows).sort("subject_id", "time", "code", nulls_last=False, maintain_order=True)
    subjects = persons["person"].to_numpy()
    split = pl.DataFrame({"subject_id": subjects, "split": assign_splits(subjects, fractions, seed).tolist()},
                         schema={"subject_id": pl.Int64, "split": pl.String})
    counts = {}
    for name in (meds.train_split, meds.tuning_split, meds.held_out_split):
        part = data.join(split.filter(pl.col("split") == name).select("subject_id"), on="subject_id", how="semi")
        folder = out / meds.data_subdirectory / name
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(meds.DataSchema.align(part.to_arrow()), folder / "0.parquet")
        counts[name] = part.height
    (out / "metadata").mkdir(parents=True, exist_ok=True)
    pq.write_table(meds.SubjectSplitSchema.align(split.to_arrow()), out / meds.subject_splits_filepath)
    domain_of_code = (events.group_by("code").agg(pl.col("concept").first().alias("omop_concept_id"),
                                                  pl.col("domain").first().alias("domain"))
                      .join(code_names(concepts).select("code", "description"), on="code", how="left"))
    if source.notes.height:
        domain_of_code = pl.concat([domain_of_code, pl.DataFrame(
            {"code": [NOTE_CODE], "omop_concept_id": [None], "domain": ["note"], "description": ["clinical note"]},
            schema=domain_of_code.schema)])
    code_table = domain_of_code.sort("code").with_columns(pl.lit([], pl.List(pl.String)).alias("parent_codes"))
    pq.write_table(meds.CodeMetadataSchema.align(code_table.select(
        "code", "description", "parent_codes", "omop_concept_id", "domain").to_arrow()), out / meds.code_metadata_filepath)
    metadata = {"dataset_name": dataset_name, "etl_name": "tumorboard_ehr.meds", "etl_version": "1",
                "meds_version": _meds_version(), "code_modifier_columns": [UNIT_COLUMN]}
    (out / meds.dataset_metadata_filepath).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    if (persons["patient_id"] != persons["person"].cast(pl.String)).any():
        persons.select(pl.col("person").alias("subject_id"), "patient_id").sort("subject_id").write_parquet(
            out / "subject_ids.parquet")
    counts["codes"] = code_table.height
    counts["subjects"] = len(subjects)
    return counts


def _meds_version() -> str:
    from importlib.metadata import version

    return version("meds")
