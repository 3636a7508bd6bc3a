"""ehr.polars on the synthetic cohort's OMOP tables (and Synthea's, when shared/data is present)."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tumorboard.api import DataError, Target, TumorboardWarning
from tumorboard_synth import SynthOptions, generate
from tumorboard.testing import parametrize_with_checks
from tumorboard_ehr.modality import EhrPolars

from conftest import SHARED_DATA

THERAPY = [2000000201, 2000000202, 2000000203]  # first chemo or targeted drug = index date
COHORT = generate(Path(tempfile.mkdtemp(prefix="tumorboard-ehr-")) / "c",
                  SynthOptions(patients=120, seed=6, images=False, rna_genes=100))


def ehr(folder: Path = COHORT, **options) -> EhrPolars:
    return EhrPolars(omop_dir=folder / "omop", index_concepts=THERAPY, **options)


def target(n: int) -> Target:
    return Target("binary", np.arange(n) % 2, None, ("0", "1"))


def copy_omop(tmp_path: Path) -> Path:
    """A copy of the OMOP tables as CSV only (the loader prefers Parquet; tests edit the CSV)."""
    folder = tmp_path / "c"
    shutil.copytree(COHORT / "omop", folder / "omop", ignore=shutil.ignore_patterns("*.parquet"))
    return folder


@parametrize_with_checks([ehr()], tasks=["binary"])  # unsupervised: one task is enough here
def test_follows_the_component_contract(component, check):
    check(component)


def test_events_after_the_index_date_are_never_used(tmp_path):
    # the restaging note after the index date states the response itself
    findings = {"response": r"partial response|progressive disease"}
    ids = sorted(ehr().available_ids())
    m = ehr(findings=findings, min_frequency=0).fit(ids, target(len(ids)))
    raw = m._raw()
    flags = [j for j, c in enumerate(raw.columns) if c.startswith("note:response")]
    assert flags and (raw.matrix[:, flags] == 0).all()  # never said before the index date
    # plant absurd post-index labs: features do not move
    folder = copy_omop(tmp_path)
    m = pl.read_csv(folder / "omop" / "measurement.csv", infer_schema=False)
    planted = m.with_columns(pl.lit("2030-01-01").alias("measurement_date"), pl.lit("99999").alias("value_as_number"))
    pl.concat([m, planted]).write_csv(folder / "omop" / "measurement.csv")
    before = ehr().fit(ids, target(len(ids))).transform(ids).values
    after = ehr(folder).fit(ids, target(len(ids))).transform(ids).values
    assert np.array_equal(before, after, equal_nan=True)


def test_fitted_state_ignores_test_patients(tmp_path):
    ids = sorted(ehr().available_ids())
    train, test = ids[:80], set(ids[80:])
    folder = copy_omop(tmp_path)
    person = pl.read_csv(folder / "omop" / "person.csv")
    test_persons = person.filter(pl.col("person_source_value").is_in(list(test)))["person_id"].cast(pl.String).to_list()
    m = pl.read_csv(folder / "omop" / "measurement.csv", infer_schema=False)
    m = m.with_columns(pl.when(pl.col("person_id").is_in(test_persons)).then(pl.lit("5000"))
                       .otherwise(pl.col("value_as_number")).alias("value_as_number"))
    m.write_csv(folder / "omop" / "measurement.csv")
    a = ehr().fit(train, target(80)).get_state()
    b = ehr(folder).fit(train, target(80)).get_state()
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key


def test_negated_metastasis_does_not_count():
    ids = sorted(ehr().available_ids())
    block = ehr(min_frequency=0).fit(ids, target(len(ids))).transform(ids)
    truth = pl.read_parquet(COHORT / "tables" / "clinical_baseline.parquet").select("patient_id", "stage")
    stage = dict(truth.iter_rows())
    col = {n: j for j, n in enumerate(block.feature_names)}
    affirmed = block.values[:, col["note:metastasis:affirmed"]] > 0
    negated = block.values[:, col["note:metastasis:negated"]] > 0
    stage4 = np.array([stage[i] == 4 for i in ids])
    assert (affirmed == stage4).all() and (negated == ~stage4).all()


def test_units_are_converted_so_sites_agree():
    ids = sorted(ehr().available_ids())
    m = ehr(min_frequency=0, winsor=(0, 1))
    m.fit(ids, target(len(ids)))
    raw = m._raw()
    j = raw.columns.index("measurement:Creatinine [Mass/volume] in Serum or Plasma [3016723]:median@all") \
        if "measurement:Creatinine [Mass/volume] in Serum or Plasma [3016723]:median@all" in raw.columns \
        else raw.columns.index("measurement:Creatinine [Mass/volume] in Serum or Plasma [3016723]:mean@all")
    values = raw.matrix[:, j]
    assert np.nanmedian(values) < 3  # umol/L values (x 88.4) were converted to mg/dL


def test_missing_omop_column_names_table_and_column(tmp_path):
    folder = copy_omop(tmp_path)
    pl.read_csv(folder / "omop" / "measurement.csv").drop("measurement_date").write_csv(folder / "omop" / "measurement.csv")
    with pytest.raises(DataError, match=r"measurement.csv: OMOP table 'measurement' lacks required column\(s\) measurement_date"):
        ehr(folder).available_ids()


def test_bad_dates_name_the_column_and_show_a_value(tmp_path):
    folder = copy_omop(tmp_path)
    c = pl.read_csv(folder / "omop" / "condition_occurrence.csv", infer_schema=False)
    c.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("03/14/2019")).otherwise(pl.col("condition_start_date"))
                   .alias("condition_start_date")).write_csv(folder / "omop" / "condition_occurrence.csv")
    with pytest.raises(DataError, match=r"column 'condition_start_date' holds 1 value\(s\) that are not dates .* '03/14/2019'"):
        ehr(folder).available_ids()


def test_duplicate_person_rows_are_an_error(tmp_path):
    folder = copy_omop(tmp_path)
    p = pl.read_csv(folder / "omop" / "person.csv")
    pl.concat([p, p.head(1)]).write_csv(folder / "omop" / "person.csv")
    with pytest.raises(DataError, match=r"person_id 1 appears 2 times .* keep one row per person"):
        ehr(folder).available_ids()


def test_absurd_labs_are_flagged_and_winsorised(tmp_path):
    folder = copy_omop(tmp_path)
    m = pl.read_csv(folder / "omop" / "measurement.csv", infer_schema=False)
    # three hemoglobin values keyed as -40 g/dL
    first = pl.int_range(pl.len()).over("measurement_concept_id") < 3
    m.with_columns(pl.when((pl.col("measurement_concept_id") == "3000963") & first)
                   .then(pl.lit("-40")).otherwise(pl.col("value_as_number")).alias("value_as_number")) \
        .write_csv(folder / "omop" / "measurement.csv")
    model = ehr(folder, winsor=(0.05, 0.95))
    with pytest.warns(TumorboardWarning, match=r"implausible lab values flagged .*negative values: 3"):
        ids = sorted(model.available_ids())
    model.fit(ids, target(len(ids)))
    j = model.columns_.index(next(c for c in model.columns_ if "[3000963]:min@all" in c))
    assert model.low_[j] > 0  # the training 5th percentile: the keyed -40s are clipped away


def test_unknown_units_are_reported_and_left_out(tmp_path):
    folder = copy_omop(tmp_path)
    m = pl.read_csv(folder / "omop" / "measurement.csv", infer_schema=False)
    m.with_columns(pl.when((pl.col("measurement_concept_id") == "3016436") & (pl.int_range(pl.len()).over("measurement_concept_id") < 30))
                   .then(pl.lit("furlongs")).otherwise(pl.col("unit_source_value")).alias("unit_source_value")) \
        .write_csv(folder / "omop" / "measurement.csv")
    with pytest.warns(TumorboardWarning, match=r"units that cannot be converted .*'furlongs' for concept 3016436"):
        ehr(folder).available_ids()


def test_empty_tables_are_reported_not_fatal(tmp_path):
    folder = copy_omop(tmp_path)
    pl.read_csv(folder / "omop" / "observation.csv").head(0).write_csv(folder / "omop" / "observation.csv")
    with pytest.warns(TumorboardWarning, match=r"observation.csv: empty table, no observation features"):
        ids = sorted(ehr(folder).available_ids())
    assert len(ids) == 120


def test_events_of_patients_outside_the_cohort_are_counted_and_ignored(tmp_path):
    from tumorboard._engine.engine import run

    folder = COHORT
    spec = tmp_path / "spec.toml"
    outcomes = tmp_path / "outcomes.csv"
    pl.read_csv(folder / "outcomes.csv").head(100).write_csv(outcomes)
    spec.write_text(f"""
[run]
name = "ehr"
task = "binary"
output = "run"
[cohort]
outcomes = "outcomes.csv"
target = "response"
[[modality]]
name = "ehr"
plugin = "ehr.polars"
options = {{ omop_dir = "{folder / 'omop'}", index_concepts = {THERAPY} }}
[model]
plugin = "model.logistic"
[evaluation]
folds = 3
bootstrap = 20
""", encoding="utf-8")
    with pytest.warns(TumorboardWarning, match=r"20 ids in the file are not in the cohort and are ignored"):
        result = run(spec)
    assert result.predictions.height == 100


def test_long_events_table(tmp_path):
    rows = [{"patient_id": f"E{i}", "time": f"2020-01-{d:02d}", "code": code, "value": float(i + d), "unit": "mg/dL"}
            for i in range(30) for d, code in ((1, "glucose"), (5, "glucose"), (9, "creatinine"))]
    pl.DataFrame(rows).write_parquet(tmp_path / "events.parquet")
    pl.DataFrame({"patient_id": [f"E{i}" for i in range(30)], "index_date": ["2020-01-08"] * 30}).write_csv(tmp_path / "index.csv")
    m = EhrPolars(events=tmp_path / "events.parquet", index_table=tmp_path / "index.csv", windows=["all"])
    ids = sorted(m.available_ids())
    block = m.fit(ids, target(30)).transform(ids)
    col = {n: j for j, n in enumerate(block.feature_names)}
    assert "measurement:glucose:n@all" in col and "measurement:creatinine:n@all" not in col  # day 9 is after the index


NO_SYNTHEA = "shared/data/omop-synthea27nj is absent (real OMOP tables written by Synthea)"


@pytest.mark.skipif(not (SHARED_DATA / "omop-synthea27nj").is_dir(), reason=NO_SYNTHEA)
def test_synthea_counts_match_the_raw_tables(tmp_path):
    folder = SHARED_DATA / "omop-synthea27nj" / "csv"
    index = dt.date(2020, 1, 1)
    persons = [r["person_id"] for r in csv.DictReader(open(folder / "PERSON.csv", encoding="utf-8"))]
    pl.DataFrame({"patient_id": persons, "index_date": [str(index)] * len(persons)}).write_csv(tmp_path / "index.csv")
    m = EhrPolars(omop_dir=folder, id_source="person_id", index_table=tmp_path / "index.csv", windows=["all"])
    raw = m._raw()
    assert len(raw.ids) == 28
    # independent count with the csv module: conditions before the index date, per person and concept
    counts = Counter()
    for r in csv.DictReader(open(folder / "CONDITION_OCCURRENCE.csv", encoding="utf-8")):
        if dt.date.fromisoformat(r["condition_start_date"][:10]) < index:
            counts[(r["person_id"], int(r["condition_concept_id"]))] += 1
    (pid, concept), expected = counts.most_common(1)[0]
    column = next(c for c in raw.columns if c.startswith("condition:") and f"[{concept}]:count@all" in c)
    assert raw.matrix[raw.row_of[pid], raw.columns.index(column)] == expected
    # the last body weight (LOINC 29463-7, concept 3025315) before the index date
    weights = sorted((r["measurement_date"], float(r["value_as_number"])) for r in csv.DictReader(open(folder / "MEASUREMENT.csv", encoding="utf-8"))
                     if r["person_id"] == "1" and r["measurement_concept_id"] == "3025315" and r["measurement_date"] < str(index))
    column = next(c for c in raw.columns if "[3025315]:last@all" in c)
    assert raw.matrix[raw.row_of["1"], raw.columns.index(column)] == pytest.approx(weights[-1][1])


def test_tfidf_vocabulary_comes_from_training_patients_only(tmp_path):
    ids = sorted(ehr().available_ids())
    train, test = ids[:60], ids[60:]
    m = ehr(tfidf_terms=30, tfidf_min_patients=3).fit(train, target(60))
    assert 0 < len(m.tfidf_terms_) <= 30 and "adenocarcinoma" in m.tfidf_terms_
    assert not any(t in m.tfidf_terms_ for t in ("progressive", "interval"))  # post-index restaging words
    block = m.transform(test)
    cols = [j for j, n in enumerate(block.feature_names) if n.startswith("note_tfidf:")]
    assert len(cols) == len(m.tfidf_terms_) and (block.values[:, cols] >= 0).all()
    # the fitted vocabulary and IDF do not change when the test patients' notes are different
    folder = copy_omop(tmp_path)
    person = pl.read_csv(folder / "omop" / "person.csv")
    test_persons = person.filter(pl.col("person_source_value").is_in(test))["person_id"].to_list()
    notes = pl.read_csv(folder / "omop" / "note.csv", infer_schema=False)
    notes.with_columns(pl.when(pl.col("person_id").cast(pl.Int64).is_in(test_persons))
                       .then(pl.lit("zebra zebra quokka")).otherwise(pl.col("note_text")).alias("note_text")) \
        .write_csv(folder / "omop" / "note.csv")
    again = ehr(folder, tfidf_terms=30, tfidf_min_patients=3).fit(train, target(60))
    assert again.tfidf_terms_ == m.tfidf_terms_ and np.allclose(again.tfidf_idf_, m.tfidf_idf_)


def test_date_shift_keeps_intervals_and_moves_only_age():
    ids = sorted(ehr().available_ids())
    plain = ehr(min_frequency=0)._raw()
    shifted = ehr(min_frequency=0, date_shift_days=365)._raw()
    assert plain.columns == shifted.columns
    age = plain.columns.index("age")
    others = [j for j in range(len(plain.columns)) if j != age]
    a, b = plain.matrix[[plain.row_of[i] for i in ids]], shifted.matrix[[shifted.row_of[i] for i in ids]]
    assert np.array_equal(a[:, others], b[:, others], equal_nan=True)
    assert 0 < np.abs(a[:, age] - b[:, age]).max() <= 1.01
