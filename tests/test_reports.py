"""The cohort report and the patient card: content, privacy, saliency, and a render in headless Chromium."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tumorboard._engine.runfiles import card_key, reference
from tumorboard_report.card import patient_card
from tumorboard._engine.engine import run
from tumorboard_report.figures import readable
from tumorboard._engine.reporters import write_reports
from tumorboard._engine.rundir import verify_run
from tumorboard_report.report import CohortReport
from tumorboard_synth import SynthOptions, generate
from conftest import fast


@functools.cache
def cohort(images: bool = True) -> Path:
    """The synthetic cohort these tests read, generated on first use (with CT volumes it takes seconds,
    which the tables-only tests of the default suite need not pay)."""
    folder = Path(tempfile.mkdtemp(prefix="tumorboard-report-")) / "c"
    return generate(folder, SynthOptions(patients=80, seed=21, images=images))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small multimodal run: clinical table + imaging.cnn, gbm, explain.shap and explain.saliency."""
    folder = tmp_path_factory.mktemp("run")
    synthetic = cohort()
    spec = folder / "spec.toml"
    spec.write_text(f"""
[run]
name = "report-test"
task = "binary"
seed = 5
output = "{(folder / 'out').as_posix()}"
[cohort]
outcomes = "{(synthetic / 'outcomes.csv').as_posix()}"
target = "response"
subgroups = ["sex"]
[[modality]]
name = "clinical"
plugin = "tabular.file"
options = {{ path = "{(synthetic / 'tables' / 'clinical_baseline.csv').as_posix()}" }}
[[modality]]
name = "ct"
plugin = "imaging.cnn"
options = {{ manifest = "{(synthetic / 'imaging' / 'manifest.csv').as_posix()}", folder = "{synthetic.as_posix()}", time_point = "baseline", window = [-150.0, 250.0], shape = [8, 16, 16], width = 8, depth = 1, epochs = 2, patience = 1, cache = "{(folder / 'cache').as_posix()}", saliency_steps = 8 }}
[fusion]
plugin = "fusion.concat"
[model]
plugin = "model.gbm"
options = {{ max_iter = 20, early_stopping = false }}
[evaluation]
folds = 2
bootstrap = 50
metrics = ["auroc", "brier"]
[[explainer]]
plugin = "explain.shap"
[[explainer]]
plugin = "explain.saliency"
options = {{ max_patients = 20 }}
""", encoding="utf-8")
    return run(spec).path


@pytest.mark.slow  # the multimodal run these share (imaging.cnn, saliency) takes 14 s on 2 cores
def test_the_run_writes_a_report_with_every_section(run_dir):
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    for heading in ("Performance", "Curves", "What drives the predictions", "Subgroup audit", "Provenance"):
        assert f"<h2>{heading}</h2>" in text
    assert text.count("data:image/png;base64,") >= 5  # ROC, PR, calibration, SHAP summary, shares, forest plot
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # nothing fetched from a network
    summary = json.loads((run_dir / "attributions" / "explain.shap.json").read_text(encoding="utf-8"))
    assert set(summary["modality_shares"]) == {"clinical", "ct"}
    assert sum(summary["modality_shares"].values()) == pytest.approx(1.0)


@pytest.mark.slow  # the multimodal run these share (imaging.cnn, saliency) takes 14 s on 2 cores
def test_reports_carry_no_patient_identifiers(run_dir):
    ids = pl.read_csv(cohort() / "outcomes.csv")["patient_id"].to_list()
    card = patient_card(run_dir, ids[3])
    for path in (run_dir / "report.html", card):
        text = path.read_text(encoding="utf-8")
        assert not [i for i in ids if i in text], path.name
    assert card.name == f"card-{reference(ids[3], card_key(run_dir))}.html" and ids[3] not in card.name


@pytest.mark.slow  # the multimodal run these share (imaging.cnn, saliency) takes 14 s on 2 cores
def test_card_shows_prediction_contributions_missing_data_and_saliency(run_dir):
    presence = pl.read_parquet(run_dir / "presence.parquet")
    without_scan = presence.filter(~pl.col("ct"))["patient_id"].to_list()
    images = np.load(run_dir / "attributions" / "explain.saliency-images.npz")
    with_map = sorted({k.split("/")[1] for k in images.files})
    assert with_map, "explain.saliency wrote no image maps"
    text = patient_card(run_dir, with_map[0]).read_text(encoding="utf-8")
    assert "predicted probability of response" in text and "Wilson" in text
    assert "Top contributing features" in text and "raises" in text or "lowers" in text
    assert "Imaging saliency" in text and "of the positive attribution mass" in text
    if without_scan:
        card = patient_card(run_dir, without_scan[0]).read_text(encoding="utf-8")
        assert "ct not available for this patient" in card and "Imaging saliency" not in card


@pytest.mark.slow  # the multimodal run these share (imaging.cnn, saliency) takes 14 s on 2 cores
def test_a_patient_outside_the_run_is_a_clear_error(run_dir):
    with pytest.raises(Exception, match="patient 'nobody' has no out-of-fold prediction in this run"):
        patient_card(run_dir, "nobody")


@pytest.mark.slow  # the multimodal run these share (imaging.cnn, saliency) takes 14 s on 2 cores
def test_report_redraw_reads_only_the_run_directory(run_dir, tmp_path):
    copy = tmp_path / "copied"
    shutil.copytree(run_dir, copy)
    (copy / "report.html").unlink()
    written, problems = write_reports(copy, {"report.cohort": CohortReport}, finished=True)
    assert written == [copy / "report.html"] and not problems and written[0].is_file()
    verify_run(copy)  # the redrawn page is recorded in the manifest
    with pytest.raises(Exception, match="not a finished tumorboard run"):
        write_reports(tmp_path, {"report.cohort": CohortReport}, finished=True)


def test_feature_names_read_well():
    """The report knows no plugin's naming scheme: the EHR modality names its own features (feature_labels)."""
    from tumorboard_ehr.labels import feature_labels

    names = ["measurement:Hemoglobin [Mass/volume] in Blood [3000963]:mean@30d",
             "measurement:ECOG performance status [2000000103]:last@all__missing", "note:egfr:negated", "age_years"]
    labels = {"ehr": feature_labels(names)}
    assert "age_years" not in labels["ehr"]  # a plain column: the report's own fallback names it
    assert readable("clinical:hemoglobin_g_dl", labels) == "Hemoglobin (g/dL) (clinical)"
    assert readable("ehr:measurement:Hemoglobin [Mass/volume] in Blood [3000963]:mean@30d", labels) == (
        "Hemoglobin in Blood, mean over the last 30 days (ehr)")
    assert readable("ehr:measurement:ECOG performance status [2000000103]:last@all__missing", labels) == (
        "ECOG performance status, last any time before the index date is missing (ehr)")
    assert readable("ehr:note:egfr:negated", labels) == "notes mention EGFR (negated) (ehr)"
    assert readable("ehr:age_years", labels) == "Age (years) (ehr)"
    # without the run's labels, the raw name stays readable rather than wrong
    assert readable("ehr:note:egfr:negated") == "Note:egfr:negated (ehr)"
    assert readable("rna:CD8A") == "CD8A (rna)"
    assert readable("ct:present") == "has ct data (ct)"


# the probe runs before the report's own scripts (it has none) and records errors and images
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.target && e.target.src)), true);
const __error = console.error; console.error = (...a) => { window.__errors.push(a.join(' ')); __error(...a); };
window.addEventListener('load', () => {
  const images = [...document.images].map(i => i.complete && i.naturalWidth > 0);
  document.title = 'PROBE' + JSON.stringify({errors: window.__errors, images: images});
});
</script>"""


def _render(path: Path, tmp_path: Path) -> dict:
    probed = tmp_path / f"probed-{path.name}"
    probed.write_text(path.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    done = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                          capture_output=True, encoding="utf-8", errors="replace", timeout=120)
    found = re.search(r"<title>PROBE(.*?)</title>", done.stdout)
    assert found, f"Chromium did not finish loading the page: {done.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&quot;", '"'))
    result["console"] = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "error" in line.lower()]
    return result


@pytest.mark.slow  # the multimodal run these share (imaging.cnn, saliency) takes 14 s on 2 cores
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium'; .ci/run installs it)")
def test_report_and_card_render_in_headless_chromium(run_dir, tmp_path):
    images = np.load(run_dir / "attributions" / "explain.saliency-images.npz")
    patient = sorted({k.split("/")[1] for k in images.files})[0]
    for page in (run_dir / "report.html", patient_card(run_dir, patient)):
        result = _render(page, tmp_path)
        assert result["errors"] == [] and result["console"] == [], page.name
        assert len(result["images"]) >= 3 and all(result["images"]), (page.name, result["images"])


@pytest.mark.parametrize(("task", "target", "model", "expected"), [
    ("survival", '["os_months", "os_event"]', "model.coxnet", ("alt=\"Kaplan-Meier curves by risk group\"", "predicted risk score")),
    ("regression", '"age"', "model.gbm", ("alt=\"predicted against observed\"", "95% prediction interval")),
])
def test_survival_and_regression_runs_get_their_own_figures(tmp_path, task, target, model, expected):
    synthetic = cohort(images=False)
    outcomes = pl.read_csv(synthetic / "outcomes.csv")
    if task == "regression":  # a continuous target the clinical table does not contain
        clinical = pl.read_csv(synthetic / "tables" / "clinical_baseline.csv")
        outcomes = outcomes.join(clinical.select("patient_id", "age"), on="patient_id")
    outcomes.write_csv(tmp_path / "outcomes.csv")
    features = pl.read_csv(synthetic / "tables" / "clinical_baseline.csv").drop("age")
    features.write_csv(tmp_path / "clinical.csv")
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[run]
name = "{task}-report"
task = "{task}"
seed = 2
output = "{(tmp_path / 'out').as_posix()}"
[cohort]
outcomes = "outcomes.csv"
target = {target}
[[modality]]
name = "clinical"
plugin = "tabular.file"
options = {{ path = "clinical.csv" }}
[fusion]
plugin = "fusion.concat"
[model]
plugin = "{model}"
[evaluation]
folds = 2
bootstrap = 50
[[explainer]]
plugin = "explain.shap"
options = {{ max_patients = 30, background = 20 }}
""", encoding="utf-8")
    result = run(spec)
    report = (result.path / "report.html").read_text(encoding="utf-8")
    assert expected[0] in report and "What drives the predictions" in report
    card = patient_card(result.path, outcomes["patient_id"][0]).read_text(encoding="utf-8")
    assert expected[1] in card


def test_the_ehr_modality_names_its_features_in_the_run_and_the_report(tmp_path):
    """feature_labels.json carries the EHR plugin's readable names; the report draws them, never the raw codes."""
    synthetic = cohort(images=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[run]
name = "labels"
task = "binary"
seed = 2
output = "{(tmp_path / 'out').as_posix()}"
[cohort]
outcomes = "{(synthetic / 'outcomes.csv').as_posix()}"
target = "response"
[[modality]]
name = "ehr"
plugin = "ehr.polars"
options = {{ omop_dir = "{(synthetic / 'omop').as_posix()}", index_concepts = [2000000201, 2000000202, 2000000203] }}
[fusion]
plugin = "fusion.concat"
[model]
plugin = "model.logistic"
[evaluation]
folds = 3
bootstrap = 50
[[explainer]]
plugin = "explain.permutation"
""", encoding="utf-8")
    result = run(spec)
    labels = json.loads((result.path / "feature_labels.json").read_text(encoding="utf-8"))["ehr"]
    assert any(text.endswith("over the last 30 days") or "before the index date" in text for text in labels.values())
    assert all("[" not in text for text in labels.values())  # concept codes are gone
    report = (result.path / "report.html").read_text(encoding="utf-8")
    assert 'alt="feature importance by explain.permutation"' in report


def test_every_run_writes_tripod_ai_and_a_model_card_that_match_its_metrics(tmp_path):
    """Every item the run can answer is filled, with the figures of metrics.json; the others are to-do."""
    from tumorboard_report.tripod import ITEMS, TODO
    from tumorboard_synth.quickstart import write_quickstart

    result = run(fast(write_quickstart(tmp_path, patients=200, seed=3), bootstrap=100))
    metrics = json.loads((result.path / "metrics.json").read_text(encoding="utf-8"))
    text = (result.path / "tripod_ai.md").read_text(encoding="utf-8")
    answers = {}
    for item in ITEMS:
        block = text.split(f"- **{item.number}. {item.topic}.**", 1)[1].split("\n- **", 1)[0]
        answers[item.number] = block.split("\n  - ", 1)[1].strip()
    answerable = {"1", "4", "5a", "7", "8a", "9a", "9b", "10", "11", "12a", "12b", "12c", "12d", "12e", "12f", "12g",
                  "13", "14", "15", "20a", "21", "22", "23a", "24", "26"}
    for number, answer in answers.items():
        assert answer.startswith(TODO) != (number in answerable), (number, answer)
    assert {"3a", "17", "18a", "19", "27a"} <= {n for n, a in answers.items() if a.startswith(TODO)}
    y = pl.read_parquet(result.path / "predictions.parquet").unique("patient_id")["y_true"]
    assert f"All {metrics['n']:,} patients" in answers["10"] and f"with {int(y.sum()):,} events" in answers["10"]
    auroc = metrics["overall"]["auroc"]
    assert f"auroc: {auroc['value']:.3f} (95% CI {auroc['ci_low']:.3f} to {auroc['ci_high']:.3f})" in answers["23a"]
    female = metrics["subgroups"]["sex"]["female"]["auroc"]
    assert f"sex = female: auroc {female['value']:.3f}" in answers["23a"] and f"n = {female['n']}" in answers["23a"]
    assert f"{metrics['folds']} outer folds" in answers["12a"]
    assert f"{metrics['curves']['calibration']['ece']:.3f}" in answers["24"]
    card = (result.path / "model_card.md").read_text(encoding="utf-8")
    assert f"| auroc | {auroc['value']:.3f} | {auroc['ci_low']:.3f} to {auroc['ci_high']:.3f} |" in card
    assert "## Intended use" in card and TODO in card
    report = (result.path / "report.html").read_text(encoding="utf-8")
    assert "TRIPOD+AI" in report and f"{len(answerable)} of {len(ITEMS)} TRIPOD+AI items" in report
