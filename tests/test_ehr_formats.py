"""ehr.polars reading MEDS datasets and FHIR R4 bundles: the same cohort written as OMOP, MEDS and FHIR
gives the same features and the same cross-validated AUROC; bad input is named by file and column."""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tumorboard import run
from tumorboard.api import DataError, TumorboardError, TumorboardWarning
from tumorboard_ehr.commands import convert
from tumorboard_ehr.modality import EhrPolars
from tumorboard_synth import SynthOptions, generate

from conftest import SHARED_DATA

THERAPY = [2000000201, 2000000202, 2000000203]
COHORT = generate(Path(tempfile.mkdtemp(prefix="tumorboard-ehr-formats-")) / "c",
                  SynthOptions(patients=150, seed=4, images=False, rna_genes=100, ehr_formats=("omop", "meds", "fhir")))
SOURCES = {
    "omop": {"omop_dir": COHORT / "omop"},
    "meds": {"meds_dir": COHORT / "meds", "subject_ids": COHORT / "meds" / "subject_ids.parquet"},
    "fhir": {"fhir_dir": COHORT / "fhir"},
}


def raw(source: str, **options):
    return EhrPolars(**SOURCES[source], index_concepts=THERAPY, **options)._raw()


def aligned(a, b) -> tuple[np.ndarray, np.ndarray]:
    """b's matrix in a's patient and column order (both must have the same patients and columns)."""
    assert sorted(a.ids) == sorted(b.ids) and sorted(a.columns) == sorted(b.columns)
    rows = [b.row_of[i] for i in a.ids]
    cols = [b.columns.index(c) for c in a.columns]
    return a.matrix, b.matrix[rows][:, cols]


def test_fhir_gives_exactly_the_omop_features():
    omop, fhir = aligned(raw("omop"), raw("fhir"))
    assert omop.shape[1] > 100
    np.testing.assert_array_equal(np.isnan(omop), np.isnan(fhir))
    # the same values; means and slopes may differ in the last bits (events summed in another order)
    np.testing.assert_allclose(np.nan_to_num(fhir), np.nan_to_num(omop), rtol=1e-9, atol=1e-9)


def omop_in_float32(omop: Path, out: Path) -> Path:
    """A copy of OMOP tables whose numeric values went through float32, as MEDS stores them."""
    from tumorboard_ehr.events import find_table

    out.mkdir(parents=True)
    for table in ("person", "condition_occurrence", "drug_exposure", "procedure_occurrence", "measurement",
                  "observation", "note", "concept"):
        path = find_table(omop, table)
        if path is None:
            continue
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
        if "value_as_number" in frame.columns:
            frame = frame.with_columns(pl.col("value_as_number").cast(pl.Float64).cast(pl.Float32))
        frame.write_parquet(out / f"{table}.parquet")
    return out


def test_meds_differs_from_omop_only_by_float32_values(tmp_path):
    # the documented difference: MEDS stores numeric_value as float32. With the OMOP values rounded to
    # float32 the features are the same; without, lab statistics agree to float32 precision (slopes,
    # a difference over a short time, amplify the rounding: relative 1e-5 seen)
    a = raw("omop")
    omop, meds = aligned(a, raw("meds"))
    np.testing.assert_array_equal(np.isnan(omop), np.isnan(meds))
    assert not np.allclose(np.nan_to_num(meds), np.nan_to_num(omop), rtol=1e-9, atol=1e-9)  # rounding shows
    rounded = EhrPolars(omop_dir=omop_in_float32(COHORT / "omop", tmp_path / "omop"), index_concepts=THERAPY)._raw()
    omop32, meds = aligned(rounded, raw("meds"))
    np.testing.assert_allclose(np.nan_to_num(meds), np.nan_to_num(omop32), rtol=1e-9, atol=1e-9)


def test_the_three_inputs_give_the_same_cross_validated_auroc(tmp_path):
    aurocs = {}
    for source, options in SOURCES.items():
        given = ", ".join(f'{k} = "{v}"' for k, v in options.items())
        spec = tmp_path / f"{source}.toml"
        spec.write_text(f"""
[run]
name = "ehr-{source}"
task = "binary"
seed = 3
output = "{tmp_path / source}"

[cohort]
outcomes = "{COHORT / 'outcomes.csv'}"
id = "patient_id"
target = "response"

[[modality]]
name = "ehr"
plugin = "ehr.polars"
options = {{ {given}, index_concepts = {THERAPY}, windows = ["365d", "all"] }}

[model]
plugin = "model.logistic"

[evaluation]
folds = 5
bootstrap = 50
""", encoding="utf-8")
        aurocs[source] = run(spec).metrics["overall"]["auroc"]["value"]
    assert aurocs["omop"] > 0.6  # the planted baseline labs carry signal
    assert abs(aurocs["meds"] - aurocs["omop"]) < 0.005 and abs(aurocs["fhir"] - aurocs["omop"]) < 0.005, aurocs


def test_meds_subject_splits_serve_as_a_predefined_split(tmp_path):
    meds = COHORT / "meds"
    splits = pl.read_parquet(meds / "metadata" / "subject_splits.parquet")
    assert set(splits["split"]) == {"train", "tuning", "held_out"}
    link = pl.read_parquet(meds / "subject_ids.parquet")
    # a cohort keyed by the MEDS subject ids: the outcomes with subject_id in place of the study pseudonym
    outcomes = (pl.read_csv(COHORT / "outcomes.csv").join(link, on="patient_id")
                .drop("patient_id").rename({"subject_id": "patient_id"}))
    outcomes.write_csv(tmp_path / "outcomes.csv")
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[run]
name = "meds-split"
task = "binary"
output = "{tmp_path / 'run'}"

[cohort]
outcomes = "outcomes.csv"
target = "response"

[[modality]]
name = "ehr"
plugin = "ehr.polars"
options = {{ meds_dir = "{meds}", index_concepts = {THERAPY} }}

[model]
plugin = "model.logistic"

[evaluation]
strategy = "predefined"
split_file = "{meds / 'metadata' / 'subject_splits.parquet'}"
bootstrap = 20
""", encoding="utf-8")
    result = run(spec)
    predictions = pl.read_parquet(result.path / "predictions.parquet")
    held_out = set(splits.filter(pl.col("split") == "held_out")["subject_id"].cast(pl.String))
    tuning = set(splits.filter(pl.col("split") == "tuning")["subject_id"].cast(pl.String))
    # scored on the held-out subjects (tuning ones are the validation set), never on a training subject
    assert set(predictions.filter(pl.col("set") == "test")["patient_id"]) == held_out
    assert set(predictions.filter(pl.col("set") == "validation")["patient_id"]) == tuning


def _meds_copy(tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(COHORT / "meds", tmp_path / "meds")
    return tmp_path / "meds"


def test_a_meds_shard_with_a_missing_or_mistyped_column_is_named(tmp_path):
    meds = _meds_copy(tmp_path)
    shard = meds / "data" / "train" / "0.parquet"
    pl.read_parquet(shard).drop("code").write_parquet(shard)
    with pytest.raises(DataError, match=r"0\.parquet: MEDS data shard lacks required column\(s\) code"):
        EhrPolars(meds_dir=meds, index_concepts=THERAPY)._raw()
    frame = pl.read_parquet(COHORT / "meds" / "data" / "train" / "0.parquet")
    frame.with_columns(pl.col("time").cast(pl.String)).write_parquet(shard)
    with pytest.raises(DataError, match=r"MEDS column 'time' is String, it should be timestamp"):
        EhrPolars(meds_dir=meds, index_concepts=THERAPY)._raw()
    frame.with_columns(pl.col("subject_id").cast(pl.String)).write_parquet(shard)
    with pytest.raises(DataError, match=r"MEDS column 'subject_id' is String, it should be int64"):
        EhrPolars(meds_dir=meds, index_concepts=THERAPY)._raw()


def test_a_folder_without_meds_data_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no data/ folder"):
        EhrPolars(meds_dir=tmp_path / "empty", index_codes=["X"])._raw()


def test_foreign_meds_codes_get_domains_by_prefix_and_labs_keep_their_unit_conversion(tmp_path):
    # a MEDS dataset written by another ETL: MIMIC-style codes, no omop_concept_id, a unit column
    rows = pl.DataFrame({
        "subject_id": [1, 1, 1, 1, 1, 2, 2, 2, 2],
        "time": [None, "2019-06-01", "2019-06-02", "2019-06-03", "2020-01-01", "1960-01-01", "2019-05-01", "2019-05-02",
                 "2020-01-01"],
        "code": ["GENDER//F", "DIAGNOSIS//ICD//10//C34", "LOINC/2160-0", "MEDICATION//pemetrexed", "INDEX",
                 "SEX/male", "LOINC/2160-0", "PROCEDURE//biopsy", "INDEX"],
        "numeric_value": [None, None, 88.4, None, None, None, 1.1, None, None],
        "unit": [None, None, "umol/L", None, None, None, "mg/dL", None, None],
    }).with_columns(pl.col("time").str.to_datetime("%Y-%m-%d"), pl.col("numeric_value").cast(pl.Float32))
    (tmp_path / "m" / "data").mkdir(parents=True)
    rows.write_parquet(tmp_path / "m" / "data" / "0.parquet")
    r = EhrPolars(meds_dir=tmp_path / "m", index_codes=["INDEX"], windows=["all"])._raw()
    assert set(r.ids) == {"1", "2"}
    columns = set(r.columns)
    assert "condition:DIAGNOSIS//ICD//10//C34:count@all" in columns
    assert "drug:MEDICATION//pemetrexed:count@all" in columns
    assert "procedure:PROCEDURE//biopsy:count@all" in columns
    # LOINC 2160-0 is creatinine (OMOP 3016723): 88.4 umol/L is converted to 1.0 mg/dL
    last = next(c for c in r.columns if c.startswith("measurement:LOINC/2160-0:last@all"))
    assert r.matrix[r.row_of["1"], r.columns.index(last)] == pytest.approx(1.0, rel=1e-5)
    assert r.matrix[r.row_of["1"], r.columns.index("sex_female")] == 1.0
    # a sex code with a time (some ETLs put it at birth) is the sex too, not an event
    assert r.matrix[r.row_of["2"], r.columns.index("sex_female")] == 0.0
    assert not any("SEX/male" in c for c in r.columns)
    with pytest.raises(DataError, match=r"index_codes \['NOPE'\] do not occur"):
        EhrPolars(meds_dir=tmp_path / "m", index_codes=["NOPE"])._raw()


def _bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def _fhir_patient(folder: Path, extra: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ref = {"reference": "Patient/abc"}
    resources = [
        {"resourceType": "Patient", "id": "abc", "gender": "male", "birthDate": "1950-03-04",
         "identifier": [{"system": "urn:study", "value": "S-1"}]},
        {"resourceType": "Condition", "id": "c1", "subject": ref, "onsetDateTime": "2019-01-01T10:00:00Z",
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "254637007", "display": "NSCLC"}]}},
        {"resourceType": "Observation", "id": "o1", "status": "final", "subject": ref, "effectiveDateTime": "2019-02-01",
         "category": [{"coding": [{"code": "laboratory"}]}],
         "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
         "valueQuantity": {"value": 120, "unit": "g/L"}},
        {"resourceType": "Observation", "id": "o2", "status": "final", "subject": ref, "effectiveDateTime": "2019-02-01",
         "category": [{"coding": [{"code": "laboratory"}]}],
         "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
         "valueQuantity": {"value": 13, "unit": "g/dL"}},
        {"resourceType": "MedicationStatement", "id": "m1", "status": "active", "subject": ref,
         "effectivePeriod": {"start": "2019-03-01"},
         "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1"}]}},
        {"resourceType": "DiagnosticReport", "id": "d1", "status": "final", "subject": ref, "issued": "2019-03-02T00:00:00Z",
         "code": {"text": "pathology"},
         "presentedForm": [{"contentType": "text/plain", "data": base64.b64encode(b"Adenocarcinoma, EGFR mutated.").decode()}]},
        {"resourceType": "Observation", "id": "o3", "status": "final", "subject": ref, "effectiveDateTime": "2019-02-01",
         "category": [{"coding": [{"code": "social-history"}]}],
         "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2", "display": "Tobacco smoking status"}]},
         "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "266919005",
                                              "display": "Never smoker"}]}},
        {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"}, "subject": ref},
        {"resourceType": "Procedure", "id": "p1", "status": "completed", "subject": ref, "performedDateTime": "2020-01-01",
         "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "INDEX"}]}},
        *extra,
    ]
    (folder / "abc.json").write_text(json.dumps(_bundle(*resources[:4])), encoding="utf-8")
    # the rest as NDJSON, as a bulk export writes it
    (folder / "rest.ndjson").write_text("\n".join(json.dumps(r) for r in resources[4:]) + "\n", encoding="utf-8")
    return folder


def test_fhir_bundles_and_ndjson_become_features_and_unknown_types_are_counted(tmp_path):
    folder = _fhir_patient(tmp_path / "f", [])
    with pytest.warns(TumorboardWarning, match="Encounter 1"):
        r = EhrPolars(fhir_dir=folder, index_codes=["CPT4/INDEX"], windows=["all"], min_frequency=0)._raw()
    assert r.ids == ["abc"]
    row = r.matrix[0]
    assert row[r.columns.index("condition:NSCLC [SNOMED/254637007]:count@all")] == 1
    # two hemoglobins: 120 g/L converted to 12 g/dL (LOINC 718-7 is OMOP 3000963), 13 g/dL kept
    mean = next(c for c in r.columns if c.startswith("measurement:Hemoglobin [LOINC/718-7]:mean@all"))
    assert row[r.columns.index(mean)] == pytest.approx(12.5)
    assert row[r.columns.index("drug:RxNorm/1:count@all")] == 1
    assert row[r.columns.index("note:egfr:affirmed")] == 1
    assert row[r.columns.index("sex_female")] == 0
    # a categorical value (valueCodeableConcept) is the observation's last value
    assert row[r.columns.index("observation:Tobacco smoking status [LOINC/72166-2]:last={never smoker}@all")] == 1
    # the cohort's ids may live in an identifier
    by_identifier = EhrPolars(fhir_dir=folder, index_codes=["CPT4/INDEX"], patient_identifier_system="urn:study")._raw()
    assert by_identifier.ids == ["S-1"]


def test_an_invalid_fhir_resource_is_named_by_file_and_entry(tmp_path):
    bad = {"resourceType": "Observation", "id": "bad", "status": "final", "code": {"text": "x"},
           "subject": {"reference": "Patient/abc"}, "valueQuantity": {"value": "twelve"}}
    folder = _fhir_patient(tmp_path / "f", [bad])
    with pytest.raises(DataError, match=r"rest\.ndjson: line 6 \(Observation bad\) is not a valid FHIR R4 resource"):
        EhrPolars(fhir_dir=folder, index_codes=["CPT4/INDEX"])._raw()
    (folder / "rest.ndjson").write_text("{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"rest\.ndjson: line 1 is not valid JSON"):
        EhrPolars(fhir_dir=folder, index_codes=["CPT4/INDEX"])._raw()


def test_a_patient_id_never_becomes_a_path(tmp_path):
    # the FHIR writer names files by person number; an id that is no FHIR id is refused, not written
    from tumorboard_ehr.events import Source
    from tumorboard_ehr.fhir import write_fhir

    persons = pl.DataFrame({"person": [1], "patient_id": ["../../escape"], "female": [1.0], "year_of_birth": [1960]},
                           schema={"person": pl.Int64, "patient_id": pl.String, "female": pl.Float64, "year_of_birth": pl.Int32})
    source = Source(pl.DataFrame(schema={"person": pl.Int64, "day": pl.Int32, "domain": pl.Categorical,
                                         "concept": pl.Int64, "value": pl.Float64, "unit": pl.String, "text": pl.String}),
                    persons, pl.DataFrame(schema={"person": pl.Int64, "day": pl.Int32, "text": pl.String}), [], [])
    with pytest.raises(ValueError, match="not a valid FHIR id"):
        write_fhir(source, None, tmp_path / "out")
    assert not (tmp_path / "escape").exists() and not any((tmp_path / "out").iterdir())


NO_SYNTHEA = "shared/data/omop-synthea27nj is absent (real OMOP tables written by Synthea)"


@pytest.mark.skipif(not (SHARED_DATA / "omop-synthea27nj").is_dir(), reason=NO_SYNTHEA)
def test_synthea_through_meds_and_fhir_has_the_omop_counts(tmp_path):
    folder = SHARED_DATA / "omop-synthea27nj" / "csv"
    persons = pl.read_csv(folder / "PERSON.csv")
    index = tmp_path / "index.csv"
    pl.DataFrame({"patient_id": persons["person_id"].cast(pl.String), "index_date": ["2020-01-01"] * persons.height}) \
        .write_csv(index)
    counts = convert(folder, tmp_path / "meds", "meds", id_source="person_id")
    convert(folder, tmp_path / "fhir", "fhir", id_source="person_id")
    assert counts["subjects"] == 28
    from tumorboard_ehr.events import read_omop
    from tumorboard_ehr.fhir import read_fhir
    from tumorboard_ehr.meds import read_meds

    omop = read_omop(folder, "person_id")
    for source, _ in (read_meds(tmp_path / "meds", None, {}), read_fhir(tmp_path / "fhir", None, {})):
        assert source.persons.height == omop.persons.height == 28
        by_domain = dict(source.events.group_by(pl.col("domain").cast(pl.String)).len().iter_rows())
        assert by_domain == dict(omop.events.group_by(pl.col("domain").cast(pl.String)).len().iter_rows())
        assert by_domain == {"condition": 470, "drug": 883, "procedure": 1649, "measurement": 10040, "observation": 8099}
    options = dict(index_table=index, windows=["365d", "all"], min_frequency=0)
    a = EhrPolars(omop_dir=folder, id_source="person_id", **options)._raw()
    omop_m, fhir_m = aligned(a, EhrPolars(fhir_dir=tmp_path / "fhir", **options)._raw())
    np.testing.assert_allclose(np.nan_to_num(fhir_m), np.nan_to_num(omop_m), rtol=1e-9, atol=1e-9)
    rounded = EhrPolars(omop_dir=omop_in_float32(folder, tmp_path / "omop32"), id_source="person_id", **options)._raw()
    omop_m, meds_m = aligned(rounded, EhrPolars(meds_dir=tmp_path / "meds", **options)._raw())
    np.testing.assert_allclose(np.nan_to_num(meds_m), np.nan_to_num(omop_m), rtol=1e-9, atol=1e-9)


def test_the_converter_refuses_to_write_over_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("a person's file")
    with pytest.raises(Exception, match="already exists"):
        convert(COHORT / "omop", tmp_path / "mine", "meds")
    with pytest.raises(Exception, match="refused|not a tumorboard|not ours"):
        convert(COHORT / "omop", tmp_path / "mine", "meds", overwrite=True)
    assert (tmp_path / "mine" / "keep.txt").read_text() == "a person's file"
    with pytest.raises(TumorboardError, match="no such folder"):
        convert(tmp_path / "absent", tmp_path / "out", "meds")
    assert not (tmp_path / "out").exists()


def test_options_other_than_the_input_reuse_the_read(monkeypatch):
    # a search over windows or families must not re-read (and re-validate) a FHIR folder per trial
    import tumorboard_ehr.fhir as fhir

    calls = []
    real = fhir.read_fhir
    monkeypatch.setattr(fhir, "read_fhir", lambda *a: calls.append(1) or real(*a))
    from tumorboard_ehr.modality import _read_source

    _read_source.cache_clear()
    a = raw("fhir", windows=["all"])
    b = raw("fhir", windows=["30d", "all"], families=["demographics", "measurements"])
    assert len(calls) == 1 and len(b.columns) != len(a.columns)


def test_a_large_ndjson_export_is_read_in_pieces_with_the_same_result_and_line_numbers(tmp_path, monkeypatch):
    import tumorboard_ehr.fhir as fhir

    # the synthetic cohort's bundles as one bulk-export style NDJSON file
    lines = [json.dumps(entry["resource"]) for path in sorted((COHORT / "fhir").glob("*.json"))[:20]
             for entry in json.loads(path.read_text())["entry"]]
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "all.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole, _ = fhir.read_fhir(tmp_path / "export", None, {})
    monkeypatch.setattr(fhir, "PART_BYTES", 3000)
    pieces = fhir.ndjson_ranges(tmp_path / "export" / "all.ndjson", 3000)
    assert len(pieces) > 5 and pieces[0][0] == 0 and pieces[-1][1] == (tmp_path / "export" / "all.ndjson").stat().st_size
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))  # no byte lost or read twice
    split, _ = fhir.read_fhir(tmp_path / "export", None, {})
    sort = ["person", "day", "concept", "value", "text"]
    assert split.events.sort(sort).equals(whole.events.sort(sort)) and split.persons.equals(whole.persons)
    # an invalid resource far into the file is still named by its line
    bad = len(lines) - 3
    lines[bad - 1] = json.dumps({"resourceType": "Observation", "id": "bad", "status": "final", "code": {"text": "x"},
                                 "valueQuantity": {"value": "twelve"}})
    (tmp_path / "export" / "all.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"all\.ndjson: line {bad} \(Observation bad\)"):
        fhir.read_fhir(tmp_path / "export", None, {})
