"""imaging.longitudinal: lesions, RECIST 1.1, delta radiomics, and the landmark that keeps the future out."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tumorboard.api import ComponentError, Target
from tumorboard_synth import SynthOptions, generate
from tumorboard.testing import parametrize_with_checks
from tumorboard_imaging.longitudinal import (
    ImagingLongitudinal,
    find_lesions,
    landmark_table,
    longest_axial_diameter,
    recist_category,
)

from conftest import fast

COHORT = generate(Path(tempfile.mkdtemp(prefix="tumorboard-longitudinal-")) / "c", SynthOptions(patients=60, seed=4))
CACHE = Path(tempfile.mkdtemp(prefix="tumorboard-longitudinal-cache-"))


def longitudinal(**options) -> ImagingLongitudinal:
    return ImagingLongitudinal(manifest=COHORT / "imaging" / "manifest.csv", folder=COHORT, cache=CACHE,
                               **{"landmark_day": 60, "delta_families": ["firstorder"], **options})


def write_spec(folder: Path, task: str, outcomes: str, target: str, options: str, model: str) -> Path:
    """A run spec with the synthetic cohort's scans as its one modality."""
    spec = folder / "spec.toml"
    manifest = COHORT / "imaging" / "manifest.csv"
    spec.write_text(f"""
[run]
name = "longitudinal"
task = "{task}"
output = "runs/x"
[cohort]
outcomes = "{COHORT / outcomes if outcomes == 'outcomes.csv' else outcomes}"
target = {target}
[[modality]]
name = "response_scan"
plugin = "imaging.longitudinal"
options = {{ manifest = "{manifest}", folder = "{COHORT}", cache = "{CACHE}", {options} }}
[model]
plugin = "{model}"
[evaluation]
folds = 3
""", encoding="utf-8")
    return spec


@parametrize_with_checks([longitudinal()], tasks=["binary"])  # unsupervised: one task is enough here
def test_follows_the_component_contract(component, check):
    check(component)


@pytest.mark.parametrize(("baseline", "followup", "new", "expected"), [
    (50.0, 0.0, False, "CR"),
    (50.0, 35.0, False, "PR"),      # -30% exactly
    (50.0, 36.0, False, "SD"),      # -28%
    (50.0, 60.0, False, "PD"),      # +20% and +10 mm
    (20.0, 24.0, False, "SD"),      # +20% but only +4 mm
    (50.0, 30.0, True, "PD"),       # a new lesion is progression whatever the shrinkage
])
def test_recist_thresholds(baseline, followup, new, expected):
    assert recist_category(baseline, followup, new) == expected


def test_diameter_and_lesions_of_a_drawn_mask():
    mask = np.zeros((4, 40, 40), bool)
    mask[1:3, 5:15, 5:25] = True        # a 10 x 20 voxel box: its diagonal is the longest axial diameter
    mask[2, 30:33, 30:33] = True        # a small second lesion
    spacing = (2.0, 1.0, 0.5)
    assert longest_axial_diameter(mask[:, :20, :], spacing) == pytest.approx(np.hypot(10 * 1.0, 20 * 0.5))
    lesions = find_lesions(mask, spacing)
    assert len(lesions) == 2 and lesions[0].volume_mm3 == pytest.approx(2 * 10 * 20 * 1.0)


def test_landmark_before_the_followup_is_refused():
    y = Target("binary", np.arange(10) % 2, None, ("0", "1"))
    ids = sorted(longitudinal().available_ids())[:10]
    with pytest.raises(ComponentError, match=r"follow-up scans of day 60 come after landmark_day = 0"):
        longitudinal(landmark_day=0).fit(ids, y)


def test_landmark_refusal_reaches_the_run_with_its_reason(tmp_path):
    from typer.testing import CliRunner

    from tumorboard._engine.cli import build_app

    app = build_app()

    spec = write_spec(tmp_path, "binary", "outcomes.csv", '"response"', "landmark_day = 30", "model.logistic")
    result = CliRunner().invoke(app, ["run", str(spec), "--quiet"])
    assert result.exit_code == 1
    assert "come after landmark_day = 30" in " ".join(result.output.split())
    assert not (tmp_path / "runs" / "x").exists()


def test_response_follows_the_planted_shrinkage():
    from sklearn.metrics import roc_auc_score

    modality = longitudinal()
    outcomes = pl.read_csv(COHORT / "outcomes.csv").filter(pl.col("patient_id").is_in(list(modality.available_ids())))
    rows = [(modality.assess(pid)[0], response) for pid, response in outcomes.select("patient_id", "response").iter_rows()]
    change = np.array([sum(x.volume_mm3 for x in r.followup) / sum(x.volume_mm3 for x in r.baseline) - 1 for r, _ in rows])
    responded = np.array([resp for _, resp in rows])
    # responders shrink by about half, the others grow by about a quarter (synthetic-cohort.md)
    assert np.median(change[responded == 1]) == pytest.approx(-0.5, abs=0.1)
    assert np.median(change[responded == 0]) == pytest.approx(0.28, abs=0.1)
    assert roc_auc_score(responded, -change) > 0.95
    # RECIST measures diameters: halving a volume shrinks a diameter by 21%, short of the 30% of a partial
    # response, so most responders are SD; a partial response is only ever seen in a responder
    categories = [r.category for r, _ in rows]
    assert all(resp == 1 for (r, resp) in rows if r.category in ("CR", "PR"))
    assert all(resp == 0 for (r, resp) in rows if r.category == "PD")
    assert categories.count("SD") > len(rows) / 2


def test_landmark_table_keeps_patients_at_risk_and_restarts_the_clock():
    frame = pl.DataFrame({"patient_id": ["a", "b", "c"], "os": [1.0, 3.0, 10.0], "event": [1, 0, 1]})
    out = landmark_table(frame, "os", 2.0)
    assert out["patient_id"].to_list() == ["b", "c"] and out["os"].to_list() == [1.0, 8.0]


def test_landmark_survival_run_from_the_followup(tmp_path):
    from tumorboard._engine.engine import run

    outcomes = landmark_table(pl.read_csv(COHORT / "outcomes.csv"), "os_months", 60 / 30.4375)
    outcomes.write_csv(tmp_path / "outcomes_landmark.csv")
    spec = write_spec(tmp_path, "survival", str(tmp_path / "outcomes_landmark.csv"), '["os_months", "os_event"]',
                      "landmark_day = 60, delta_families = []", "model.coxnet")
    result = run(fast(spec, bootstrap=50, metrics=["c_index"]))
    c = result.metrics["overall"]["c_index"]
    assert c["ci_low"] < c["value"] < c["ci_high"] and 0.0 < c["value"] < 1.0


def _scans(folder: Path, followups: dict[str, np.ndarray]) -> Path:
    """A manifest of drawn baseline/follow-up scans: one 12 mm lesion at baseline, ``followups`` masks."""
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    rows = []
    lesion = np.zeros((6, 24, 24), np.uint8)
    lesion[2:4, 6:18, 6:18] = 1
    for pid, (mask_followup, image_followup) in followups.items():
        for point, mask, image in (("baseline", lesion, None), ("followup", mask_followup, image_followup)):
            if image is None:
                image = rng.normal(40, 10, lesion.shape).astype(np.float32)
            for kind, array in (("ct", image), ("mask", mask)):
                item = sitk.GetImageFromArray(array)
                item.SetSpacing((1.0, 1.0, 2.0))
                sitk.WriteImage(item, str(folder / f"{kind}_{pid}_{point}.nii.gz"))
            rows.append({"patient_id": pid, "time_point": point, "image": f"ct_{pid}_{point}.nii.gz",
                         "mask": f"mask_{pid}_{point}.nii.gz", "day": 0 if point == "baseline" else 60})
    pl.DataFrame(rows).write_csv(folder / "manifest.csv")
    return folder / "manifest.csv"


def test_every_lesion_gone_is_a_complete_response(tmp_path):
    gone = np.zeros((6, 24, 24), np.uint8)
    manifest = _scans(tmp_path, {"A": (gone, None)})
    modality = ImagingLongitudinal(manifest=manifest, landmark_day=60, cache=None, delta_families=["firstorder"])
    response, delta = modality.assess("A")
    assert response.category == "CR" and response.sld[1] == 0.0 and response.sld[0] >= 12.0
    assert np.isnan(delta["delta:firstorder:Mean"])  # nothing left to measure at follow-up


def test_an_unusable_followup_scan_marks_the_patient_absent(tmp_path):
    shrunk = np.zeros((6, 24, 24), np.uint8)
    shrunk[2:4, 8:14, 8:14] = 1
    blank = np.full((6, 24, 24), 7.0, np.float32)
    manifest = _scans(tmp_path, {"A": (shrunk, None), "B": (shrunk, None), "C": (shrunk, blank)})
    modality = ImagingLongitudinal(manifest=manifest, landmark_day=60, cache=None, delta_families=[])
    with pytest.warns(UserWarning, match=r"1 image\(s\) are unusable .*follow-up scan\) is constant"):
        block = modality.fit(["A", "B"], Target("binary", np.array([0, 1]), None, ("0", "1"))).transform(["A", "B", "C"])
    assert block.presence.tolist() == [True, True, False]
