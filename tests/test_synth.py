"""The synthetic cohort: deterministic, real formats, the planted answer where documented."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tumorboard_synth import CHUNK, SynthOptions, generate
from tumorboard_synth.omop import SCHEMAS

TINY = dict(image_size=(24, 24, 12), rna_genes=300, dicom_fraction=0.3)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "c", SynthOptions(patients=40, seed=3, **TINY))


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(cohort, tmp_path):
    again = generate(tmp_path / "again", SynthOptions(patients=40, seed=3, **TINY))
    first, second = digests(cohort), digests(again)
    assert len(first) > 100  # tables, matrices, volumes, masks, DICOM slices
    assert first == second


def test_another_seed_gives_another_cohort(cohort, tmp_path):
    other = generate(tmp_path / "other", SynthOptions(patients=40, seed=4, images=False, rna_genes=300))
    assert (other / "outcomes.csv").read_bytes() != (cohort / "outcomes.csv").read_bytes()


def test_oracle_auroc_from_the_ground_truth_exceeds_0_85(tmp_path):
    path = generate(tmp_path / "big", SynthOptions(patients=3000, seed=0, images=False, rna_genes=200))
    truth = json.loads((path / "ground_truth.json").read_text(encoding="utf-8"))
    assert truth["oracle"]["auroc"] > 0.85
    assert 0.70 < truth["oracle"]["c_index"] < 0.9
    shares = truth["modality_shares"]["response"]
    assert sum(shares.values()) == pytest.approx(1, abs=1e-3)
    assert all(0.1 < s < 0.6 for s in shares.values())  # no modality carries the signal alone
    # chunked writing: more patients than one chunk, each exactly once, in order
    ids = pl.read_parquet(path / "outcomes.parquet")["patient_id"]
    assert 3000 > CHUNK and ids.to_list() == [f"P{i:06d}" for i in range(1, 3001)]
    person = pl.read_parquet(path / "omop" / "person.parquet")
    assert person["person_source_value"].to_list() == ids.to_list()


@pytest.mark.parametrize("table", [t for t in SCHEMAS])
def test_omop_tables_have_the_cdm_columns_and_types(cohort, table):
    expected = SCHEMAS[table]
    frame = pl.read_parquet(cohort / "omop" / f"{table}.parquet")
    assert list(frame.schema.items()) == list(expected.items())
    header = (cohort / "omop" / f"{table}.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == list(expected)
    typed = pl.read_csv(cohort / "omop" / f"{table}.csv", schema=expected)  # CSV parses with CDM types
    assert typed.height == frame.height


def test_events_per_patient_are_tens_to_hundreds(cohort):
    tables = ["condition_occurrence", "drug_exposure", "measurement", "observation", "procedure_occurrence", "note"]
    counts = pl.concat([pl.read_parquet(cohort / "omop" / f"{t}.parquet").select("person_id") for t in tables])
    per = counts.group_by("person_id").len()["len"]
    assert per.len() == 40 and 20 <= per.min() and per.median() < 300


def test_notes_carry_negated_findings(cohort):
    notes = pl.read_parquet(cohort / "omop" / "note.parquet")["note_text"]
    assert notes.str.contains("No evidence of metast").any()
    assert notes.str.contains("consistent with metastatic disease|suspicious for metastasis|osseous metastasis").any()


def test_omics_layers_have_missing_patients_and_sane_values(cohort):
    rna = pl.read_parquet(cohort / "omics" / "rna.parquet")
    assert rna.columns[0] == "patient_id" and rna.width == 301
    assert (rna.drop("patient_id").to_numpy() >= 0).all()
    beta = pl.read_csv(cohort / "omics" / "methylation.tsv", separator="\t").drop("patient_id").to_numpy()
    assert ((beta >= 0) & (beta <= 1)).all()
    mutation = pl.read_parquet(cohort / "omics" / "mutation.parquet")
    assert set(np.unique(mutation.drop("patient_id").to_numpy())) <= {0, 1}
    heights = {layer: pl.read_parquet(cohort / "omics" / f"{layer}.parquet").height
               for layer in ("mutation", "cnv", "rna", "methylation", "protein", "metabolite")}
    assert heights["metabolite"] < heights["mutation"] <= 40


def test_masks_match_volumes_and_geometry(cohort):
    import SimpleITK as sitk

    manifest = pl.read_csv(cohort / "imaging" / "manifest.csv")
    truth = pl.read_parquet(cohort / "ground_truth.parquet")
    row = manifest.filter(pl.col("timepoint") == "baseline").row(0, named=True)
    image = sitk.ReadImage(str(cohort / row["image"]))
    mask = sitk.ReadImage(str(cohort / row["mask"]))
    assert image.GetSize() == (24, 24, 12) and image.GetSpacing() == pytest.approx((1.25, 1.25, 2.5))
    assert mask.GetSize() == image.GetSize() and mask.GetOrigin() == image.GetOrigin()
    ct = sitk.GetArrayFromImage(image)
    assert ct.min() <= -900 and ct.max() >= 300  # air and bone
    voxels = sitk.GetArrayFromImage(mask).sum()
    expected = truth.filter(pl.col("patient_id") == row["patient_id"])["tumour_volume_mm3"][0]
    assert voxels * np.prod(image.GetSpacing()) == pytest.approx(expected)


def test_dicom_series_reads_back_as_the_nifti_volume(cohort):
    import SimpleITK as sitk

    rows = pl.read_csv(cohort / "imaging" / "manifest_dicom.csv")
    assert rows.height >= 1
    row = rows.row(0, named=True)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(cohort / row["image"])))
    dicom = reader.Execute()
    nifti = sitk.ReadImage(str(cohort / "imaging" / "ct_baseline" / f"{row['patient_id']}.nii.gz"))
    assert np.array_equal(sitk.GetArrayFromImage(dicom), sitk.GetArrayFromImage(nifti))
    assert dicom.GetSpacing() == pytest.approx(nifti.GetSpacing())


def test_followup_shrinks_for_responders(cohort):
    import SimpleITK as sitk

    manifest = pl.read_csv(cohort / "imaging" / "manifest.csv")
    outcomes = pl.read_csv(cohort / "outcomes.csv")
    ratios = {0: [], 1: []}
    for pid, response in outcomes.select("patient_id", "response").iter_rows():
        rows = manifest.filter(pl.col("patient_id") == pid)
        if rows.height == 2:
            before, after = (sitk.GetArrayFromImage(sitk.ReadImage(str(cohort / m))).sum() for m in rows["mask"])
            ratios[response].append(after / before)
    assert np.median(ratios[1]) < 0.8 < 1.0 < np.median(ratios[0])


def test_best_therapy_follows_the_planted_interaction(cohort):
    truth = pl.read_parquet(cohort / "ground_truth.parquet")
    egfr = truth.filter(pl.col("EGFR"))
    kras = truth.filter(pl.col("KRAS"))
    neither = truth.filter(~pl.col("EGFR") & ~pl.col("KRAS"))
    assert (egfr["best_therapy"] == "targeted").all() and (kras["best_therapy"] == "chemo").all()
    assert (neither["treatment_effect"].abs() < 1e-12).all()


def test_confounded_assignment_follows_egfr(tmp_path):
    path = generate(tmp_path / "conf", SynthOptions(patients=1500, seed=1, images=False, rna_genes=100, confounded=True))
    truth = pl.read_parquet(path / "ground_truth.parquet").select("patient_id", "EGFR")
    arms = pl.read_parquet(path / "outcomes.parquet").join(truth, on="patient_id")
    rate = arms.group_by("EGFR").agg((pl.col("treatment") == "targeted").mean()).sort("EGFR")["treatment"].to_list()
    assert rate[1] - rate[0] > 0.3


def test_existing_folder_is_refused(cohort):
    from tumorboard._engine.errors import RunError

    with pytest.raises(RunError, match="already exists"):
        generate(cohort, SynthOptions(patients=5, images=False))
