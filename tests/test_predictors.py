"""Predictors and evaluation end to end: survival runs, calibration, ensembles, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tumorboard._engine.engine import run
from tumorboard._engine.errors import ComponentError, DataError
from tumorboard_synth.quickstart import write_quickstart
from tumorboard_synth import SynthOptions, generate

from conftest import fast, set_key

SURVIVAL_SPEC = """
[run]
name = "synthetic-os"
task = "survival"
seed = 5
output = "runs/os"

[cohort]
outcomes = "outcomes.csv"
target = ["os_months", "os_event"]
subgroups = ["sex"]

[[modality]]
name = "clinical"
plugin = "tabular.file"
options = { path = "tables/clinical_baseline.csv" }

[model]
plugin = "MODEL"

[evaluation]
folds = 3
bootstrap = 100
"""


@pytest.fixture(scope="module")
def survival_cohort(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("os") / "c", SynthOptions(patients=400, seed=2, images=False, rna_genes=100))


def survival_spec(folder: Path, model: str, options: str = "") -> Path:
    spec = folder / f"spec-{model}.toml"
    text = SURVIVAL_SPEC.replace('"MODEL"', f'"{model}"' + (f"\noptions = {options}" if options else ""))
    spec.write_text(text.replace('"runs/os"', f'"runs/{model}"'), encoding="utf-8")
    return spec


@pytest.mark.parametrize(("model", "options"), [
    ("model.coxnet", ""),
    ("model.rsf", "{ n_estimators = 40 }"),
    ("model.gbsurv", "{ n_estimators = 60 }"),
])
def test_survival_models_find_the_planted_clinical_signal(survival_cohort, model, options):
    result = run(survival_spec(survival_cohort, model, options), overwrite=True)
    overall = result.metrics["overall"]
    assert overall["c_index"]["value"] > 0.6
    assert overall["uno_c"]["value"] > 0.6 and overall["td_auc"]["value"] > 0.6
    assert 0 < overall["ibs"]["value"] < 0.25  # survival curves were scored
    groups = result.metrics["curves"]["risk_groups"]
    assert [g["n"] for g in groups["groups"]] and groups["logrank"]["p_value"] < 0.01
    km = groups["groups"][0]
    assert km["km_survival"][0] <= 1.0 and km["km_survival"] == sorted(km["km_survival"], reverse=True)


def test_survival_pipeline_is_saved_without_pickle_and_predicts_again(survival_cohort):
    from tumorboard._engine.predict import predict_new

    path = run(survival_spec(survival_cohort, "model.rsf", "{ n_estimators = 20 }"), overwrite=True).path
    files = list((path / "pipeline").iterdir())
    assert not any(f.suffix in (".pkl", ".pickle", ".joblib") for f in files)
    again = predict_new(path, survival_cohort)
    assert again.height == 400 and np.isfinite(again["y_pred"].to_numpy()).all()


def test_calibrated_model_has_small_ece(tmp_path):
    spec = fast(write_quickstart(tmp_path, patients=4000, seed=8), bootstrap=20)
    text = spec.read_text(encoding="utf-8").replace(
        'plugin = "model.logistic"', 'plugin = "model.gbm"\noptions = { calibration = "isotonic", max_iter = 60 }')
    spec.write_text(text.replace('metrics = ["auroc", "accuracy", "brier"]', 'metrics = ["auroc", "ece"]'), encoding="utf-8")
    result = run(spec)
    assert result.metrics["overall"]["ece"]["value"] < 0.05
    assert not result.metrics["curves"]["calibration"]["flagged"]


def test_overconfident_model_is_flagged(tmp_path):
    spec = fast(write_quickstart(tmp_path, patients=1500, seed=8), bootstrap=20)
    shutil.copy(Path(__file__).parent / "overconfident_plugin.py", tmp_path / "overconfident_plugin.py")
    text = spec.read_text(encoding="utf-8").replace('plugin = "model.logistic"', 'plugin = "model.overconfident"')
    spec.write_text(text + '\n[plugins]\nmodules = ["overconfident_plugin"]\n', encoding="utf-8")
    with pytest.warns(UserWarning, match="poorly calibrated: expected calibration error"):
        result = run(spec)
    assert result.metrics["curves"]["calibration"]["flagged"]
    assert result.metrics["curves"]["calibration"]["ece"] > 0.1


def test_binary_run_reports_curves_and_equalized_odds(quickstart):
    metrics = run(quickstart).metrics
    curves = metrics["curves"]
    assert len(curves["decision_curve"]["threshold"]) == 99 and curves["reliability"]["count"]
    assert curves["roc"]["fpr"][0] == 0.0 and curves["roc"]["tpr"][-1] == 1.0
    eo = metrics["equalized_odds"]["sex"]
    assert set(eo["tpr"]) == {"female", "male"} and 0 <= eo["difference"] <= 1


@pytest.mark.parametrize("method", ["vote", "stack"])
def test_ensemble_runs_inside_the_engine(quickstart, method):
    text = quickstart.read_text(encoding="utf-8").replace(
        'plugin = "model.logistic"',
        f'plugin = "model.ensemble"\noptions = {{ method = "{method}", models = [{{ plugin = "model.logistic" }}, '
        '{ plugin = "model.gbm", options = { max_iter = 40 } }] }')
    quickstart.write_text(text, encoding="utf-8")
    assert run(quickstart).metrics["overall"]["auroc"]["value"] > 0.7


def test_ensemble_with_an_unknown_member_is_a_spec_error(quickstart):
    from tumorboard._engine.errors import SpecError
    from tumorboard._engine.spec import load_spec

    text = quickstart.read_text(encoding="utf-8").replace(
        'plugin = "model.logistic"', 'plugin = "model.ensemble"\noptions = { models = [{ plugin = "model.logistic" }, { plugin = "model.gmb" }] }')
    quickstart.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match="no model component 'model.gmb'; installed: .*model.gbm"):
        load_spec(quickstart)


LOCAL_MEMBER = """
import numpy as np
from tumorboard.api import Model, hookimpl


class Prevalence(Model):
    \"\"\"Predicts the training prevalence for everyone (a local plugin file's model).\"\"\"

    name = "model.local_prevalence"
    tasks = frozenset({"binary"})

    def fit(self, X, y):
        self.rate_ = float(np.mean(y.values))
        return self

    def predict(self, X):
        return np.full(len(X.ids), self.rate_)


@hookimpl
def register_models(register):
    register(Prevalence)
"""


def test_ensemble_members_come_from_the_specs_own_registry_and_never_leak(tmp_path):
    """A member from a spec's local plugin file is found through that spec's registry (passed explicitly in
    the options' validation context); a later spec without that file cannot see it (no global registry)."""
    from tumorboard._engine.errors import SpecError
    from tumorboard._engine.spec import load_spec

    ensemble = ('plugin = "model.ensemble"\noptions = { models = [{ plugin = "model.logistic" }, '
                '{ plugin = "model.local_prevalence" }] }')
    with_plugin = write_quickstart(tmp_path / "a", patients=120)
    (with_plugin.parent / "members.py").write_text(LOCAL_MEMBER, encoding="utf-8")
    text = with_plugin.read_text(encoding="utf-8").replace('plugin = "model.logistic"', ensemble)
    with_plugin.write_text('[plugins]\nmodules = ["members"]\n' + text, encoding="utf-8")
    loaded = load_spec(with_plugin)
    assert [m.cls.name for m in loaded.model.options.models] == ["model.logistic", "model.local_prevalence"]
    # in worker processes too: the member's class travels with the ensemble's options
    assert run(fast(with_plugin, bootstrap=20), workers=2).metrics["overall"]["auroc"]["value"] > 0.6

    without = write_quickstart(tmp_path / "b", patients=120)
    without.write_text(without.read_text(encoding="utf-8").replace('plugin = "model.logistic"', ensemble),
                       encoding="utf-8")
    with pytest.raises(SpecError, match="no model component 'model.local_prevalence'"):
        load_spec(without)


def test_gbm_handles_regression_and_multiclass(quickstart):
    cohort = quickstart.parent / "cohort.csv"
    labs = pl.read_csv(quickstart.parent / "labs.csv")
    hb = labs["hemoglobin"].fill_null(12.5).to_numpy()
    pl.read_csv(cohort).with_columns(response=pl.Series(hb * 2 + 1)).write_csv(cohort)
    set_key(quickstart, "task", '"regression"')
    set_key(quickstart, "metrics", '["r2", "mae"]')
    text = quickstart.read_text(encoding="utf-8").replace('plugin = "model.logistic"', 'plugin = "model.gbm"')
    quickstart.write_text(text, encoding="utf-8")
    assert run(quickstart).metrics["overall"]["r2"]["value"] > 0.8


@pytest.mark.parametrize(("column", "value", "message"), [
    ("os_months", "0", r"survival time 0.0 in 'os_months' must be > 0"),
    ("os_event", "2", r"event 2.0 in 'os_event' must be 0 \(censored\) or 1 \(event\)"),
])
def test_bad_survival_outcomes_are_named(survival_cohort, tmp_path, column, value, message):
    folder = tmp_path / "c"
    shutil.copytree(survival_cohort, folder, ignore=shutil.ignore_patterns("runs"))
    outcomes = pl.read_csv(folder / "outcomes.csv")
    outcomes.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(float(value)))
                          .otherwise(pl.col(column)).alias(column)).write_csv(folder / "outcomes.csv")
    with pytest.raises(DataError, match=rf"outcomes.csv: line 5: {message}"):
        run(survival_spec(folder, "model.coxnet"))


def test_subgroup_with_one_class_is_warned(quickstart):
    cohort = quickstart.parent / "cohort.csv"
    frame = pl.read_csv(cohort)
    # a rare subgroup made only of responders
    frame = frame.with_columns(sex=pl.when((pl.col("response") == 1) & (pl.int_range(pl.len()) < 40))
                               .then(pl.lit("other")).otherwise(pl.col("sex")))
    frame.write_csv(cohort)
    with pytest.warns(UserWarning, match="subgroup sex = 'other' holds a single class"):
        run(quickstart)


def test_nan_in_predictions_is_a_clear_error(quickstart, monkeypatch):
    from tumorboard_linear.logistic import LogisticModel

    monkeypatch.setattr(LogisticModel, "predict", lambda self, X: np.full(len(X.ids), np.nan))
    with pytest.raises(ComponentError, match=r"model \(model.logistic\): predict\(\) returned \d+ non-finite value"):
        run(quickstart)


def test_external_validation_by_site_reports_each_site(survival_cohort):
    spec = survival_spec(survival_cohort, "model.coxnet")
    text = spec.read_text(encoding="utf-8").replace('subgroups = ["sex"]', 'subgroups = ["sex"]\nsite = "site"')
    spec.write_text(text.replace("folds = 3", 'folds = 3\nstrategy = "site"'), encoding="utf-8")
    metrics = run(spec, overwrite=True).metrics
    assert set(metrics["sites"]) == {f"test site site_{k}" for k in "abcd"}
    assert all(m["c_index"]["value"] > 0.55 for m in metrics["sites"].values())


def test_gbsg2_coxnet_matches_the_published_range(tmp_path):
    """GBSG2 ships inside scikit-survival: a real-data check that needs nothing from shared/."""
    import subprocess
    import sys

    examples = Path(__file__).resolve().parents[1] / "examples"
    subprocess.run([sys.executable, str(examples / "prepare_survival_data.py"), str(tmp_path / "data")],
                   check=True, capture_output=True)
    spec = tmp_path / "gbsg2.toml"
    spec.write_text((examples / "survival-gbsg2.toml").read_text(encoding="utf-8"), encoding="utf-8")
    result = run(fast(spec, bootstrap=200))
    c = result.metrics["overall"]["c_index"]
    assert 0.62 < c["value"] < 0.78 and c["ci_low"] < 0.688 < c["ci_high"]  # scikit-survival reports 0.688
    assert json.loads((result.path / "resolved.json").read_text(encoding="utf-8"))["evaluation"]["strategy"] == "holdout"


@pytest.fixture(scope="module")
def survival_data(tmp_path_factory) -> Path:
    """examples/prepare_survival_data.py's output, written once for this module's tests."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("survival") / "data"
    examples = Path(__file__).resolve().parents[1] / "examples"
    subprocess.run([sys.executable, str(examples / "prepare_survival_data.py"), str(folder)], check=True,
                   capture_output=True)
    return folder


@pytest.mark.parametrize("variant", ["genes only",
                                     pytest.param("clinical + genes", marks=pytest.mark.slow),  # 4 s
                                     pytest.param("clinical + genes, stacking", marks=pytest.mark.slow)])  # 8 s
def test_breast_cancer_coxnet_runs_complete(tmp_path, survival_data, variant):
    """76 correlated genes on 198 patients: model.coxnet once diverged in its final fit ("weights are
    too large"); it now fits down its regularisation path, and every variant completes with a C-index."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    (tmp_path / "data").symlink_to(survival_data, target_is_directory=True)
    text = (examples / "survival-breast-cancer.toml").read_text(encoding="utf-8")
    if variant == "genes only":
        text = text.replace('[[modality]]\nname = "clinical"\nplugin = "tabular.file"\n'
                            'options = { path = "data/breast-cancer/clinical.csv" }\n\n', "")
    if variant.endswith("stacking"):
        text = text.replace('plugin = "fusion.concat"', 'plugin = "fusion.stacking"')
    spec = tmp_path / "spec.toml"
    spec.write_text(text, encoding="utf-8")
    metrics = run(fast(spec, bootstrap=100)).metrics
    c = metrics["overall"]["c_index"]
    assert 0.55 < c["value"] < 0.85 and c["ci_low"] < c["value"] < c["ci_high"]
    assert metrics["per_fold"]["c_index"]["sd"] is not None


def _overconfident_spec(tmp_path: Path, calibration: str | None, patients: int = 1500, shuffle: bool = False) -> Path:
    spec = fast(write_quickstart(tmp_path, patients=patients, seed=8, shuffle_labels=shuffle), bootstrap=50)
    shutil.copy(Path(__file__).parent / "overconfident_plugin.py", tmp_path / "overconfident_plugin.py")
    model = 'plugin = "model.overconfident"' + (f'\ncalibration = "{calibration}"' if calibration else "")
    text = spec.read_text(encoding="utf-8").replace('plugin = "model.logistic"', model)
    text = text.replace('metrics = ["auroc", "accuracy", "brier"]', 'metrics = ["auroc", "ece", "brier"]')
    spec.write_text(text + '\n[plugins]\nmodules = ["overconfident_plugin"]\n', encoding="utf-8")
    return spec


def test_the_calibration_warning_names_what_the_spec_can_set(tmp_path):
    with pytest.warns(UserWarning, match=r'set calibration = "isotonic" \(or "sigmoid"\) in \[model\]'):
        run(_overconfident_spec(tmp_path, None))


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_the_engine_calibrates_any_binary_model(tmp_path, method):
    """A local, overconfident model (no calibration of its own) is calibrated by [model] calibration."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(_overconfident_spec(tmp_path, method))
    assert not any("poorly calibrated" in str(w.message) for w in caught)
    assert not result.metrics["curves"]["calibration"]["flagged"]
    assert result.metrics["overall"]["ece"]["value"] < 0.06
    assert result.metrics["overall"]["auroc"]["value"] > 0.7  # calibration keeps the ranking (isotonic: nearly)
    manifest = json.loads((result.path / "pipeline" / "manifest.json").read_text())
    assert manifest["calibration"]["method"] == method  # saved as plain numbers with the pipeline


def test_calibration_sees_training_patients_only(tmp_path):
    """Permuted labels: a calibrated model still scores at chance out of fold."""
    result = run(_overconfident_spec(tmp_path, "isotonic", patients=600, shuffle=True))
    auroc = result.metrics["overall"]["auroc"]
    assert auroc["ci_low"] < 0.5 < auroc["ci_high"]


def test_calibration_is_refused_where_it_cannot_apply(tmp_path):
    from tumorboard._engine.errors import SpecError
    from tumorboard._engine.spec import load_spec

    spec = write_quickstart(tmp_path / "a", patients=60, seed=0)
    spec.write_text(spec.read_text().replace('plugin = "model.logistic"',
                                             'plugin = "model.gbm"\ncalibration = "isotonic"\n'
                                             'options = { calibration = "sigmoid" }'))
    with pytest.raises(SpecError, match="calibrated twice"):
        load_spec(spec)
    spec = write_quickstart(tmp_path / "b", patients=60, seed=0)
    text = spec.read_text().replace('task = "binary"', 'task = "regression"').replace(
        'plugin = "model.logistic"', 'plugin = "model.gbm"\ncalibration = "sigmoid"')
    spec.write_text(text)
    with pytest.raises(SpecError, match="calibrates binary probabilities; this is a regression task"):
        load_spec(spec)


@pytest.mark.parametrize("bad", [
    {"method": "isotonic", "x": [0.0, 1.0], "y": [0.0], "extra": 1},
    {"method": "isotonic", "x": "os.system", "y": [0.0]},
    {"method": "sigmoid", "a": float("nan"), "b": 0.0},
    {"method": "__import__", "a": 1.0, "b": 0.0},
])
def test_a_tampered_calibration_is_refused(tmp_path, bad):
    """The calibrator is read back as numbers only: anything else in its place stops the load."""
    from tumorboard._engine.calibration import checked_calibrator
    from tumorboard._engine.errors import RunError

    with pytest.raises(RunError, match="saved calibration is malformed"):
        checked_calibrator(bad, "pipeline/manifest.json")
    good = {"method": "isotonic", "x": [0.1, 0.5, 0.9], "y": [0.2, 0.4, 0.7]}
    assert checked_calibrator(good, "manifest") == good


def test_predict_applies_the_saved_calibrator(tmp_path):
    """New patients get the refit model's probabilities passed through the refit's calibrator."""
    from tumorboard._engine.calibration import apply_calibrator
    from tumorboard._engine.predict import predict_new

    plain = fast(write_quickstart(tmp_path / "plain", patients=200, seed=3), bootstrap=10)
    calibrated = fast(write_quickstart(tmp_path / "calibrated", patients=200, seed=3), bootstrap=10)
    calibrated.write_text(calibrated.read_text().replace('plugin = "model.logistic"',
                                                         'plugin = "model.logistic"\ncalibration = "sigmoid"'))
    plain_run, calibrated_run = run(plain).path, run(calibrated).path
    raw = predict_new(plain_run, plain.parent)["y_pred"].to_numpy()
    got = predict_new(calibrated_run, calibrated.parent)["y_pred"].to_numpy()
    saved = json.loads((calibrated_run / "pipeline" / "manifest.json").read_text())["calibration"]
    np.testing.assert_allclose(got, apply_calibrator(saved, raw), rtol=1e-12)
    assert not np.allclose(got, raw)
