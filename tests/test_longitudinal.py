"""imaging.longitudinal: lesions, RECIST 1.1, delta radiomics, and the landmark that keeps the future out."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tumorboard.api import ComponentError, Target
from tumorboard.synth import SynthOptions, generate
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


@parametrize_with_checks([longitudinal()])
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

    from tumorboard.cli import app

    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[run]
name = "too-early"
task = "binary"
output = "runs/x"
[cohort]
outcomes = "{COHORT / 'outcomes.csv'}"
target = "response"
[[modality]]
name = "response_scan"
plugin = "imaging.longitudinal"
options = {{ manifest = "{COHORT / 'imaging' / 'manifest.csv'}", folder = "{COHORT}", landmark_day = 30 }}
[model]
plugin = "model.logistic"
[evaluation]
bootstrap = 10
""", encoding="utf-8")
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
    from tumorboard.engine import run

    outcomes = landmark_table(pl.read_csv(COHORT / "outcomes.csv"), "os_months", 60 / 30.4375)
    outcomes.write_csv(tmp_path / "outcomes_landmark.csv")
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[run]
name = "landmark"
task = "survival"
output = "runs/landmark"
[cohort]
outcomes = "outcomes_landmark.csv"
target = ["os_months", "os_event"]
[[modality]]
name = "response_scan"
plugin = "imaging.longitudinal"
options = {{ manifest = "{COHORT / 'imaging' / 'manifest.csv'}", folder = "{COHORT}", landmark_day = 60, delta_families = [], cache = "{CACHE}" }}
[model]
plugin = "model.coxnet"
[evaluation]
folds = 3
metrics = ["c_index"]
""", encoding="utf-8")
    result = run(fast(spec, bootstrap=50))
    c = result.metrics["overall"]["c_index"]
    assert c["ci_low"] < c["value"] < c["ci_high"] and 0.0 < c["value"] < 1.0
