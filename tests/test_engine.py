"""End-to-end behaviour of `tumorboard run` on quickstart cohorts with a planted answer."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from tumorboard._engine.engine import run
from tumorboard._engine.errors import DataError, RunError
from tumorboard_synth.quickstart import QUICKSTART_SPEC, write_quickstart

from conftest import fast, set_key


def test_shuffled_labels_score_at_chance(tmp_path):
    spec = fast(write_quickstart(tmp_path, patients=400, seed=3, shuffle_labels=True))
    result = run(spec)
    assert 0.40 <= result.metrics["overall"]["auroc"]["value"] <= 0.60


def test_planted_signal_is_found(quickstart):
    result = run(quickstart)
    auroc = result.metrics["overall"]["auroc"]
    assert auroc["value"] > 0.72
    assert auroc["ci_low"] < auroc["value"] < auroc["ci_high"]


def test_quickstart_spec_is_the_one_in_the_issue(tmp_path):
    spec = write_quickstart(tmp_path, patients=120, seed=0)
    assert spec.read_text(encoding="utf-8") == QUICKSTART_SPEC
    result = run(spec)  # exactly as given, default bootstrap
    assert set(result.metrics["overall"]) == {"auroc", "accuracy", "brier"}


def test_same_spec_and_seed_give_identical_predictions(tmp_path):
    spec = fast(write_quickstart(tmp_path, patients=150, seed=4))
    first = run(spec).path / "predictions.parquet"
    copy = tmp_path / "first.parquet"
    copy.write_bytes(first.read_bytes())
    second = run(spec, overwrite=True).path / "predictions.parquet"
    assert pl.read_parquet(copy).equals(pl.read_parquet(second))
    assert copy.read_bytes() == second.read_bytes()


def test_run_directory_holds_every_artifact(quickstart):
    path = run(quickstart).path
    for name in ("spec.toml", "resolved.json", "provenance.json", "metrics.json", "predictions.parquet",
                 "pipeline/manifest.json", "attributions/explain.permutation.parquet"):
        assert (path / name).is_file(), name
    assert (path / "spec.toml").read_text(encoding="utf-8") == quickstart.read_text(encoding="utf-8")
    provenance = json.loads((path / "provenance.json").read_text(encoding="utf-8"))
    assert len(provenance["inputs_sha256"]) == 2 and provenance["seed"] == 7
    assert "tabular" in provenance["plugins"]
    metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["overall"]["auroc"]) >= {"value", "ci_low", "ci_high"}
    assert set(metrics["subgroups"]["sex"]) == {"female", "male"}
    predictions = pl.read_parquet(path / "predictions.parquet")
    assert predictions.columns[:4] == ["patient_id", "repeat", "fold", "set"]
    assert {"y_true", "y_pred"} <= set(predictions.columns)
    assert predictions.height == 200 and predictions["patient_id"].n_unique() == 200
    resolved = json.loads((path / "resolved.json").read_text(encoding="utf-8"))
    assert resolved["model"]["options"]["C"] == 1.0  # defaults filled in


def test_explainer_ranks_planted_labs_first(quickstart):
    path = run(quickstart).path
    top = pl.read_parquet(path / "attributions/explain.permutation.parquet")["feature"].head(3).to_list()
    assert set(top) == {"labs:hemoglobin", "labs:ldh", "labs:albumin"}


def test_existing_output_is_refused_without_overwrite(quickstart):
    run(quickstart)
    with pytest.raises(RunError, match="(?s)already exists.*--overwrite"):
        run(quickstart)
    assert run(quickstart, overwrite=True).path.is_dir()


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupted_run_leaves_no_run_directory(quickstart, monkeypatch, error):
    from tumorboard_linear.logistic import LogisticModel

    calls = {"n": 0}
    original = LogisticModel.fit

    def fit_then_fail(self, X, y):
        calls["n"] += 1
        if calls["n"] == 3:
            raise error("stopped mid-run")
        return original(self, X, y)

    monkeypatch.setattr(LogisticModel, "fit", fit_then_fail)
    with pytest.raises((error, RunError)) as caught:
        run(quickstart)
    if error is RuntimeError:  # a component failure names where it happened and the component
        assert str(caught.value).startswith("outer fold repeat 1 fold 3: model (model.logistic) failed in fit(): "
                                            "RuntimeError: stopped mid-run")
    runs = quickstart.parent / "runs"
    assert calls["n"] == 3
    assert not (runs / "quickstart").exists()
    assert list(runs.iterdir()) == []  # the staging folder is gone too


def test_failed_overwrite_keeps_the_previous_run(quickstart, monkeypatch):
    from tumorboard_linear.logistic import LogisticModel

    first = run(quickstart).path
    before = (first / "metrics.json").read_text(encoding="utf-8")
    monkeypatch.setattr(LogisticModel, "fit", lambda self, X, y: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RunError, match="model.*boom"):
        run(quickstart, overwrite=True)
    assert (first / "metrics.json").read_text(encoding="utf-8") == before


def test_duplicate_patient_ids_in_outcomes_are_named(quickstart):
    cohort = quickstart.parent / "cohort.csv"
    lines = cohort.read_text(encoding="utf-8").splitlines()
    cohort.write_text("\n".join(lines + [lines[5]]) + "\n")
    with pytest.raises(DataError, match=r"cohort.csv.*'QS00004'.*line 6.*line 202.*one row per patient"):
        run(quickstart)


def test_missing_target_column_lists_the_columns(quickstart):
    set_key(quickstart, "target", '"responce"')
    with pytest.raises(DataError, match=r"no column 'responce'.*columns are: patient_id, response, sex"):
        run(quickstart)


def test_modality_ids_matching_no_patient_is_an_error(quickstart):
    labs = quickstart.parent / "labs.csv"
    labs.write_text(labs.read_text(encoding="utf-8").replace("QS", "XX"))
    with pytest.raises(DataError, match=r"modality 'labs'.*labs.csv.*none of its 200 patient ids match"):
        run(quickstart)


def test_modality_covering_some_patients_warns_and_marks_absent(quickstart):
    labs = quickstart.parent / "labs.csv"
    lines = labs.read_text(encoding="utf-8").splitlines()
    labs.write_text("\n".join(lines[:151]) + "\n")  # header + 150 patients
    with pytest.warns(UserWarning, match=r"50 of 200 cohort patients have no data and are marked absent"):
        result = run(quickstart)
    assert any("marked absent" in w for w in result.metrics["warnings"])
    assert result.predictions.height == 200  # absent patients are still predicted


def test_inf_in_features_names_file_row_and_column(quickstart):
    labs = quickstart.parent / "labs.csv"
    frame = pl.read_csv(labs).with_columns(pl.when(pl.col("patient_id") == "QS00010").then(float("inf"))
                                           .otherwise(pl.col("ldh")).alias("ldh"))
    frame.write_csv(labs)
    with pytest.raises(DataError, match=r"labs.csv: line 12, column 'ldh' holds inf"):
        run(quickstart)


def test_missing_feature_values_are_imputed_from_training_patients(quickstart):
    labs = quickstart.parent / "labs.csv"
    assert pl.read_csv(labs)["ldh"].null_count() > 0  # the quickstart has gaps
    result = run(quickstart)
    assert np.isfinite(result.predictions["y_pred"].to_numpy()).all()


def test_class_with_fewer_members_than_folds_is_an_error(quickstart):
    cohort = quickstart.parent / "cohort.csv"
    frame = pl.read_csv(cohort)
    keep = pl.concat([frame.filter(pl.col("response") == 0), frame.filter(pl.col("response") == 1).head(3)])
    keep.write_csv(cohort)
    with pytest.raises(DataError, match=r"class '1' has 3 patient\(s\), fewer than evaluation.folds = 5.*lower"):
        run(quickstart)


def test_holdout_scores_only_the_held_out_patients(quickstart):
    set_key(quickstart, "folds", "5\nstrategy = \"holdout\"\nholdout = 0.25")
    result = run(quickstart)
    assert result.predictions.height == 50
    assert result.metrics["overall"]["auroc"]["n"] == 50


def test_site_strategy_reports_each_external_site(quickstart):
    cohort = quickstart.parent / "cohort.csv"
    frame = pl.read_csv(cohort)
    frame.with_columns(site=pl.Series(["north", "south", "east", "west"] * 50)).write_csv(cohort)
    set_key(quickstart, "subgroups", '["sex"]\nsite = "site"')
    set_key(quickstart, "folds", '5\nstrategy = "site"\ntest_sites = ["west"]')
    result = run(quickstart)
    assert set(result.predictions["patient_id"]) == set(frame["patient_id"][3::4])
    assert list(result.metrics["sites"]) == ["test site west"]


def test_predefined_folds_from_a_file_are_reproduced_exactly(quickstart):
    ids = pl.read_csv(quickstart.parent / "cohort.csv")["patient_id"]
    folds = [i % 3 for i in range(len(ids))]
    pl.DataFrame({"patient_id": ids, "fold": folds}).write_csv(quickstart.parent / "splits.csv")
    set_key(quickstart, "folds", '5\nstrategy = "predefined"\nsplit_file = "splits.csv"')
    result = run(quickstart)
    got = dict(zip(result.predictions["patient_id"], result.predictions["fold"], strict=True))
    assert all(got[pid] == fold for pid, fold in zip(ids, folds, strict=True))


def test_predefined_train_validation_test_split_from_a_column(quickstart):
    cohort = quickstart.parent / "cohort.csv"
    frame = pl.read_csv(cohort)
    labels = ["train"] * 120 + ["validation"] * 30 + ["test"] * 50
    frame.with_columns(split=pl.Series(labels)).write_csv(cohort)
    set_key(quickstart, "folds", '5\nstrategy = "predefined"\nsplit_column = "split"')
    result = run(quickstart)
    sets = result.predictions.group_by("set").len().sort("set")
    assert dict(sets.iter_rows()) == {"test": 50, "validation": 30}
    assert result.metrics["n"] == 50 and "validation" in result.metrics["sets"]


def test_repeated_folds_predict_every_patient_once_per_repeat(quickstart):
    set_key(quickstart, "repeats", "2")
    result = run(quickstart)
    counts = result.predictions.group_by("patient_id").len()["len"]
    assert (counts == 2).all()


def test_multiclass_runs_with_class_probabilities(quickstart):
    cohort = quickstart.parent / "cohort.csv"
    labs = pl.read_csv(quickstart.parent / "labs.csv")
    hb = labs["hemoglobin"].fill_null(12.5).to_numpy()
    grade = np.where(hb < 11.8, "low", np.where(hb < 13.2, "mid", "high"))
    pl.read_csv(cohort).with_columns(response=pl.Series(grade)).write_csv(cohort)
    set_key(quickstart, "task", '"multiclass"')
    set_key(quickstart, "metrics", '["accuracy", "auroc"]')
    result = run(quickstart)
    assert {"p_high", "p_low", "p_mid"} <= set(result.predictions.columns)
    assert result.metrics["overall"]["auroc"]["value"] > 0.8

