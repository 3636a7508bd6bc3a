"""``ehr.polars``: OMOP CDM or long event tables into per-patient clinical features."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

import numpy as np
import polars as pl
from pydantic import Field, model_validator

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
    fit_numeric,
)

from .events import Source, find_table, read_long_events, read_omop
from .features import DEFAULT_FINDINGS, index_from_concepts, normalise_units, raw_features, window_days

SOURCES = ("omop_dir", "events", "meds_dir", "fhir_dir")
CODE_DOMAINS = ("condition", "drug", "procedure", "measurement", "observation", "note")
FAMILIES = ("demographics", "condition", "drug", "procedure", "observation", "measurements", "notes")


class EventColumns(Options):
    """Column names of a long events table."""
    patient_id: str = "patient_id"
    time: str = "time"
    code: str = "code"
    value: str | None = "value"
    unit: str | None = "unit"


class _Raw:
    """Raw features of every patient with an index date, computed once per input version."""

    def __init__(self, ids: list[str], columns: list[str], matrix: np.ndarray, files: list[Path], report: list[str],
                 texts: list[str]):
        self.ids = ids
        self.row_of = {pid: i for i, pid in enumerate(ids)}
        self.columns, self.matrix = columns, matrix
        self.files, self.report = files, report
        self.texts = texts  # each patient's notes before the index date, for TF-IDF


@functools.lru_cache(maxsize=1)  # one input's events held: their memory is the feature table's order of size
def _read_source(omop_dir, events_path, meds_dir, fhir_dir, subject_ids, identifier_system, code_domains, columns,
                 id_source, _file_versions) -> tuple[Source, dict[str, int], dict[int, str]]:
    """The input read into events, each code's concept number and the concepts' labels, once per input
    version: specs that differ only in windows, families or the index date (an ablation, a search) share it;
    a FHIR folder's read is most of an EHR run's time."""
    code_of: dict[str, int] = {}
    if meds_dir is not None:
        from .meds import read_meds

        source, code_of = read_meds(Path(meds_dir), Path(subject_ids) if subject_ids else None, dict(code_domains))
        return source, code_of, source.names
    if fhir_dir is not None:
        from .fhir import read_fhir

        source, code_of = read_fhir(Path(fhir_dir), identifier_system, dict(code_domains))
        return source, code_of, source.names
    if omop_dir is not None:
        source = read_omop(Path(omop_dir), id_source)
        concept_path = find_table(Path(omop_dir), "concept")
        names = {}
        if concept_path is not None:
            table = pl.read_csv(concept_path, infer_schema=False) if concept_path.suffix != ".parquet" else pl.read_parquet(concept_path)
            # readable and unambiguous: "Hemoglobin [Mass/volume] in Blood [3000963]"
            names = {c: f"{n} [{c}]" for c, n in zip(table["concept_id"].cast(pl.Int64).to_list(),
                                                     table["concept_name"].cast(pl.String).to_list(), strict=True)}
        return source, code_of, names
    source = read_long_events(Path(events_path), dict(columns))
    return source, {name: concept for concept, name in source.names.items()}, source.names


@functools.lru_cache(maxsize=8)
def _compute(key: tuple) -> _Raw:
    (omop_dir, events_path, meds_dir, fhir_dir, subject_ids, identifier_system, code_domains, columns, id_source,
     index_table, index_id, index_column, index_concepts, index_codes, windows, families, findings, shift_days, seed,
     _file_versions) = key
    source, code_of, names = _read_source(omop_dir, events_path, meds_dir, fhir_dir, subject_ids, identifier_system,
                                          code_domains, columns, id_source, _file_versions)
    events, report = normalise_units(source.events)
    report = source.report + report
    if index_table is not None:
        from tumorboard.api import read_table

        table = read_table(Path(index_table), index_id)
        if index_column not in table.columns:
            raise DataError(f"{index_table}: no index date column {index_column!r}; columns are {', '.join(table.columns)}")
        day = table[index_column].cast(pl.String).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
        if day.null_count() > table[index_column].null_count():
            bad = table.filter(day.is_null() & table[index_column].is_not_null())[index_column][0]
            raise DataError(f"{index_table}: column {index_column!r} holds a value that is not a date: {bad!r}")
        index = (pl.DataFrame({"patient_id": table[index_id].cast(pl.String), "index_day": day.cast(pl.Int32)})
                 .join(source.persons.select("patient_id", "person"), on="patient_id").select("person", "index_day"))
    else:
        unknown = [c for c in index_codes if c not in code_of]
        if unknown:
            raise DataError(f"index_codes {unknown} do not occur in the data; codes look like "
                            f"{', '.join(sorted(code_of)[:5])}")
        concepts = list(index_concepts) + [code_of[c] for c in index_codes]
        index = index_from_concepts(events, concepts).with_columns(pl.col("index_day").cast(pl.Int32))
    notes = source.notes
    if shift_days:
        # one random shift per patient, applied to every date of theirs: intervals (and so every
        # feature but age at index) are unchanged, while no real calendar date is kept
        persons_ = source.persons["person"].to_numpy()
        rng = np.random.default_rng([seed, 7_777])
        shift = pl.DataFrame({"person": persons_, "_shift": rng.integers(-shift_days, shift_days + 1, len(persons_)).astype(np.int32)})
        events = events.join(shift, on="person", how="left").with_columns((pl.col("day") + pl.col("_shift").fill_null(0)).alias("day")).drop("_shift")
        notes = notes.join(shift, on="person", how="left").with_columns((pl.col("day") + pl.col("_shift").fill_null(0)).alias("day")).drop("_shift")
        index = index.join(shift, on="person", how="left").with_columns(
            (pl.col("index_day") + pl.col("_shift").fill_null(0)).alias("index_day")).drop("_shift")
    persons, columns, matrix = raw_features(events, source.persons, notes, index, list(windows), set(families),
                                            dict(findings), names)
    patient_of = dict(zip(source.persons["person"].to_list(), source.persons["patient_id"].to_list(), strict=True))
    texts = [""] * len(persons)
    if notes.height:
        joined = (notes.join(index, on="person").filter(pl.col("day") < pl.col("index_day"))
                  .sort("person", "day", maintain_order=True).group_by("person", maintain_order=True)
                  .agg(pl.col("text").str.join(" ")))
        row = {int(p): i for i, p in enumerate(persons)}
        for person, text in joined.iter_rows():
            if person in row:
                texts[row[person]] = text
    return _Raw([patient_of[int(p)] for p in persons], columns, matrix, source.files, report, texts)


class EhrPolars(Modality):
    """Clinical features from OMOP CDM v5.4 tables, MEDS, FHIR R4 or a long events table, with polars.

    Per patient, only events before their index date: demographics; per concept
    and look-back window, counts and days since last for conditions, drugs,
    procedures and observations; last/mean/min/max/slope/count of labs (units
    converted); negation-aware finding flags from notes. Concepts rarer than
    ``min_frequency`` among training patients are dropped; imputation (with
    missing-value indicators), winsorising and scaling are learned on training
    patients only. No date, name or text is ever output.
    """

    name = "ehr.polars"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})

    class Options(Options):
        omop_dir: InputPath | None = Field(None, description="Folder with OMOP CDM tables (CSV or Parquet).")
        events: InputPath | None = Field(None, description="A long events table instead of OMOP.")
        meds_dir: InputPath | None = Field(None, description="A MEDS dataset folder (data/*.parquet, metadata/) "
                                                             "instead of OMOP.")
        fhir_dir: InputPath | None = Field(None, description="A folder of FHIR R4 Bundle .json / .ndjson files "
                                                             "instead of OMOP.")
        subject_ids: InputPath | None = Field(None, description="MEDS: a table linking subject_id to the cohort's "
                                                                "patient_id (default: the subject id is the patient id).")
        patient_identifier_system: str | None = Field(
            None, description="FHIR: the Patient.identifier system holding the cohort's patient ids (default: Patient.id).")
        code_domains: dict[str, Literal[CODE_DOMAINS]] = Field(  # type: ignore[valid-type]
            default_factory=dict, description="MEDS/FHIR: code prefix (vocabulary) -> domain, before the built-in "
                                              "rules (docs/ehr.md).")
        events_columns: EventColumns = Field(default_factory=EventColumns, description="Column names of the events table.")
        id_source: Literal["person_source_value", "person_id"] = Field(
            "person_source_value", description="Which OMOP person column holds the cohort's patient ids.")
        index_table: InputPath | None = Field(None, description="Table with each patient's index date.")
        index_id_column: str = Field("patient_id", description="Id column of the index table.")
        index_column: str = Field("index_date", description="Date column of the index table.")
        index_concepts: list[int] = Field(default_factory=list, description="Index date = first event of these concepts.")
        index_codes: list[str] = Field(default_factory=list, description="Index date = first event of these codes "
                                                                         "(MEDS codes, FHIR 'vocabulary/code', event codes).")
        windows: list[str] = Field(default_factory=lambda: ["30d", "365d", "all"], description="Look-back windows.")
        families: list[Literal[FAMILIES]] = Field(default_factory=lambda: list(FAMILIES),  # type: ignore[valid-type]
                                                  description="Feature families to compute.")
        findings: dict[str, str] | None = Field(None, description="Note findings: name -> regular expression.")
        min_frequency: float = Field(0.05, ge=0, lt=1, description="Share of training patients a feature needs.")
        winsor: tuple[float, float] = Field((0.01, 0.99), description="Training quantiles values are clipped to.")
        missing_indicators: bool = Field(True, description="Add FEATURE__missing where training values have gaps.")
        date_shift_days: int = Field(0, ge=0, description="Shift all of each patient's dates by one random number of "
                                                           "days in [-N, N] before use (intervals kept).")
        tfidf_terms: int = Field(0, ge=0, description="TF-IDF features from notes before the index date (0: off); "
                                                       "vocabulary and IDF learned on training patients.")
        tfidf_min_patients: int = Field(5, ge=1, description="A term must appear in this many training patients' notes "
                                                             "(rare words can identify people).")

        @model_validator(mode="after")
        def _one_source(self):
            given = [k for k in SOURCES if getattr(self, k) is not None]
            if len(given) != 1:
                raise ValueError("give exactly one of omop_dir (OMOP tables), events (a long events table), meds_dir "
                                 f"(a MEDS dataset) or fhir_dir (FHIR bundles); got {given or 'none'}")
            if self.index_table is None and not self.index_concepts and not self.index_codes:
                raise ValueError("give index_table (a date per patient), index_concepts or index_codes (first occurrence)")
            if self.subject_ids is not None and self.meds_dir is None:
                raise ValueError("subject_ids links MEDS subject ids to patients: it needs meds_dir")
            for w in self.windows:
                window_days(w)
            if not 0 <= self.winsor[0] < self.winsor[1] <= 1:
                raise ValueError(f"winsor {list(self.winsor)} must be [low, high] quantiles with low < high")
            return self

    def _raw(self) -> _Raw:
        o = self.options
        findings = tuple(sorted((o.findings if o.findings is not None else DEFAULT_FINDINGS).items()))
        def text(path):
            return str(path) if path is not None else None

        key = (text(o.omop_dir), text(o.events), text(o.meds_dir), text(o.fhir_dir), text(o.subject_ids),
               o.patient_identifier_system, tuple(sorted(o.code_domains.items())),
               tuple(o.events_columns.model_dump().items()), o.id_source,
               text(o.index_table), o.index_id_column, o.index_column,
               tuple(o.index_concepts), tuple(o.index_codes), tuple(o.windows), tuple(o.families), findings, o.date_shift_days, self.seed,
               _versions(o))
        misses = _compute.cache_info().misses
        raw = _compute(key)
        if _compute.cache_info().misses > misses:  # first computation: tell the person what was found
            for message in raw.report:
                warnings.warn(message, TumorboardWarning, stacklevel=3)
        return raw

    def available_ids(self) -> set[str]:
        return set(self._raw().ids)

    def input_files(self) -> list[Path]:
        return self._raw().files

    def fit(self, ids: Sequence[str], y: Target) -> Self:
        if len(ids) != len(y):
            raise ComponentError(f"{self.name}: fit() got {len(ids)} ids but {len(y)} target values")
        raw = self._raw()
        rows = np.array([raw.row_of[i] for i in ids if i in raw.row_of], dtype=np.int64)
        if len(rows) == 0:
            raise DataError(f"{self.name}: none of the {len(ids)} training patients has an index date and a record")
        train = raw.matrix[rows]
        seen = np.mean(np.isfinite(train) & (train != 0), axis=0)
        keep = np.flatnonzero(seen >= self.options.min_frequency)
        stats = fit_numeric(train[:, keep], impute="median", winsor=self.options.winsor)
        self.columns_ = [raw.columns[j] for j in keep]
        self.low_, self.high_, self.fill_ = stats.low, stats.high, stats.fill
        self.mean_, self.scale_ = stats.mean, stats.scale
        gaps = stats.gaps if self.options.missing_indicators else np.zeros(len(keep), bool)
        self.indicators_ = [c for c, g in zip(self.columns_, gaps, strict=True) if g]
        self.tfidf_terms_, self.tfidf_idf_ = [], np.zeros(0)
        if self.options.tfidf_terms:
            from sklearn.feature_extraction.text import TfidfVectorizer

            texts = [raw.texts[r] for r in rows]
            vectorizer = TfidfVectorizer(max_features=self.options.tfidf_terms, min_df=self.options.tfidf_min_patients,
                                         stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
            try:
                vectorizer.fit(texts)
            except ValueError:  # no term frequent enough among training patients
                return self
            self.tfidf_terms_ = list(vectorizer.get_feature_names_out())
            self.tfidf_idf_ = vectorizer.idf_
        return self

    def _tfidf(self, texts: list[str]) -> np.ndarray:
        if not self.tfidf_terms_:
            return np.zeros((len(texts), 0))
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(vocabulary=self.tfidf_terms_, stop_words="english",
                                     token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
        vectorizer.idf_ = self.tfidf_idf_  # learned on training patients, never refitted here
        return vectorizer.transform(texts).toarray()

    def feature_labels(self, names: Sequence[str]) -> dict[str, str]:
        """``measurement:Hemoglobin [Mass/volume] in Blood [3000963]:mean@30d`` reads as ``Hemoglobin in
        Blood, mean over the last 30 days`` (tumorboard_ehr.labels)."""
        from .labels import feature_labels

        return feature_labels(names)

    def transform(self, ids: Sequence[str]) -> FeatureBlock:
        self.check_is_fitted()
        raw = self._raw()
        index = {c: j for j, c in enumerate(raw.columns)}
        missing = [c for c in self.columns_ if c not in index]
        if missing:
            raise DataError(f"{self.name}: the data lack features the pipeline was fitted on, e.g. {missing[:3]}")
        rows = np.array([raw.row_of.get(str(i), -1) for i in ids], dtype=np.int64)
        present = rows >= 0
        values = np.full((len(ids), len(self.columns_)), np.nan)
        values[present] = raw.matrix[rows[present]][:, [index[c] for c in self.columns_]]
        gaps = np.isnan(values)
        scaled = apply_numeric(values, self.low_, self.high_, self.fill_, self.mean_, self.scale_)
        position = {c: j for j, c in enumerate(self.columns_)}
        indicators = np.stack([gaps[:, position[c]] for c in self.indicators_], axis=1) if self.indicators_ \
            else np.zeros((len(ids), 0))
        texts = [raw.texts[r] if r >= 0 else "" for r in rows]
        out = np.concatenate([scaled, indicators, self._tfidf(texts)], axis=1)
        out[~present] = np.nan
        names = (tuple(self.columns_) + tuple(f"{c}__missing" for c in self.indicators_)
                 + tuple(f"note_tfidf:{t}" for t in self.tfidf_terms_))
        return FeatureBlock(tuple(ids), out, names, present, self.name)


def _versions(o) -> tuple:
    """File versions (mtime, size) of every input, so an edited file is read again."""
    paths = [p for p in (o.omop_dir, o.events, o.meds_dir, o.fhir_dir, o.subject_ids, o.index_table) if p is not None]
    stamp = []
    for p in paths:
        for f in sorted(x for x in Path(p).rglob("*") if x.is_file()) if Path(p).is_dir() else [Path(p)]:
            s = f.stat()
            stamp.append((str(f), s.st_mtime_ns, s.st_size))
    return tuple(stamp)
