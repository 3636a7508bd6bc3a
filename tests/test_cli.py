"""The `tumorboard` command: run, spec validate, predict, demo, and what each prints."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
from typer.testing import CliRunner

from tumorboard._engine.cli import build_app

app = build_app()
from tumorboard_synth.quickstart import write_quickstart

from conftest import set_key

runner = CliRunner()


def test_run_prints_metrics_and_the_run_directory(quickstart):
    result = runner.invoke(app, ["run", str(quickstart)])
    assert result.exit_code == 0, result.output
    assert "auroc" in result.output and "95% CI" in result.output
    assert f"run directory: {quickstart.parent / 'runs' / 'quickstart'}" in result.output.replace("\n", "")


def test_quiet_run_prints_only_the_run_directory(quickstart):
    result = runner.invoke(app, ["run", str(quickstart), "--quiet"])
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("run directory:")


def test_existing_output_exits_with_a_clear_message(quickstart):
    assert runner.invoke(app, ["run", str(quickstart), "-q"]).exit_code == 0
    result = runner.invoke(app, ["run", str(quickstart), "-q"])
    assert result.exit_code == 1
    assert "output folder already exists" in result.output and "--overwrite" in result.output
    assert runner.invoke(app, ["run", str(quickstart), "-q", "--overwrite"]).exit_code == 0


def test_spec_validate_reports_problems_without_running(quickstart):
    assert runner.invoke(app, ["spec", "validate", str(quickstart)]).exit_code == 0
    set_key(quickstart, "folds", "1")
    result = runner.invoke(app, ["spec", "validate", str(quickstart)])
    assert result.exit_code == 2
    assert "evaluation.folds = 1" in result.output
    assert not (quickstart.parent / "runs").exists()


def test_predict_applies_the_saved_pipeline_to_a_new_folder(quickstart, tmp_path):
    assert runner.invoke(app, ["run", str(quickstart), "-q"]).exit_code == 0
    run_dir = quickstart.parent / "runs" / "quickstart"
    # new patients laid out like the original inputs; their outcomes unknown
    new = tmp_path / "new"
    write_quickstart(new, patients=30, seed=99)
    (new / "cohort.csv").unlink()
    out = tmp_path / "pred.csv"
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(new), "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pl.read_csv(out)
    assert frame.height == 30 and frame["y_pred"].is_between(0, 1).all()


def test_predict_matches_the_refitted_pipeline_on_training_patients(quickstart, tmp_path):
    from tumorboard._engine.engine import load_run_cohort
    from tumorboard._engine.pipeline import Pipeline
    from tumorboard._engine.predict import predict_new
    from tumorboard._engine.spec import load_spec

    runner.invoke(app, ["run", str(quickstart), "-q"])
    run_dir = quickstart.parent / "runs" / "quickstart"
    via_folder = predict_new(run_dir, quickstart.parent)
    loaded = load_spec(quickstart)
    cohort = load_run_cohort(loaded)
    pipeline = Pipeline([("labs", loaded.modalities[0])], loaded.fusion, loaded.model)
    direct = pipeline.fit(list(cohort.ids), cohort.target).predict(list(cohort.ids), "binary")
    assert via_folder["patient_id"].to_list() == list(cohort.ids)
    assert abs(via_folder["y_pred"].to_numpy() - direct).max() < 1e-6


def test_predict_with_a_spec_pointing_at_new_files(quickstart, tmp_path):
    runner.invoke(app, ["run", str(quickstart), "-q"])
    new = tmp_path / "elsewhere"
    write_quickstart(new, patients=20, seed=5)
    (new / "labs.csv").rename(new / "labs-2026.csv")
    spec = new / "spec.toml"
    spec.write_text(spec.read_text(encoding="utf-8").replace('"labs.csv"', '"labs-2026.csv"'))
    result = runner.invoke(app, ["predict", str(quickstart.parent / "runs/quickstart"), "--data", str(spec)])
    assert result.exit_code == 0, result.output
    assert "QS00019" in result.output


def test_demo_generates_a_cohort_and_runs_the_bundled_spec(tmp_path):
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path / "demo"), "--patients", "60", "-q"])
    assert result.exit_code == 0, result.output
    assert "auroc" in result.output and "oracle AUROC" in result.output
    assert (tmp_path / "demo" / "cohort" / "runs" / "synthetic-response" / "metrics.json").is_file()


def test_python_dash_m_is_the_same_command():
    result = subprocess.run([sys.executable, "-m", "tumorboard", "--help"], capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0 and "plugins" in result.stdout and "predict" in result.stdout


def test_plugins_table_lists_catalogued_plugins_with_install_hint():
    result = runner.invoke(app, ["plugins"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "tabular.file" in result.output
    assert "pip install \"tumorboard-example-centroid @ git+https://github.com/tumorboard/tumorboard" in result.output
