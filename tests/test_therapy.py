"""Therapy selection on the synthetic cohort, whose best therapy per patient is known."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tumorboard._engine.cli import build_app

app = build_app()
from tumorboard._engine.engine import run
from tumorboard._engine.errors import DataError
from tumorboard_synth import SynthOptions, generate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def therapy_spec(folder: Path, learner: str = "dr", extra: str = "", bags: int = 0, bootstrap: int = 200) -> Path:
    (folder / "evidence").mkdir(exist_ok=True)
    shutil.copy(EXAMPLES / "evidence" / "nsclc-textbook.csv", folder / "evidence" / "nsclc-textbook.csv")
    text = (EXAMPLES / "synthetic-therapy.toml").read_text(encoding="utf-8")
    text = text.replace('learner = "dr"', f'learner = "{learner}"\nbags = {bags}{extra}')
    text = text.replace('"runs/synthetic-therapy"', f'"runs/{learner}"').replace("[evaluation]", f"[evaluation]\nbootstrap = {bootstrap}")
    spec = folder / f"spec-{learner}.toml"
    spec.write_text(text, encoding="utf-8")
    return spec


def cohort(tmp_path_factory, name: str, patients: int, confounded: bool = False) -> Path:
    return generate(tmp_path_factory.mktemp(name) / "c",
                    SynthOptions(patients=patients, seed=1, images=False, rna_genes=100, confounded=confounded))


@pytest.fixture(scope="module")
def randomised(tmp_path_factory) -> Path:
    return cohort(tmp_path_factory, "rct", 3000)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return cohort(tmp_path_factory, "small", 300)


def planted_nonzero(folder: Path, effects: pl.DataFrame) -> pl.DataFrame:
    truth = pl.read_parquet(folder / "ground_truth.parquet")
    return effects.join(truth, on="patient_id").filter(pl.col("treatment_effect").abs() > 1e-9)


def test_recommendations_match_the_planted_best_therapy(randomised):
    result = run(therapy_spec(randomised, "dr"), overwrite=True)
    effects = pl.read_parquet(result.path / "treatment" / "effects.parquet")  # out-of-fold
    nonzero = planted_nonzero(randomised, effects)
    assert nonzero.height > 300
    assert (nonzero["recommended"] == nonzero["best_therapy"]).mean() >= 0.8
    qini = result.metrics["treatment"]["candidates"]["targeted"]["qini"]
    assert qini["ci_low"] > 0  # the 95% CI excludes zero
    assert result.metrics["treatment"]["overlap"]["warning"] is False  # randomised


@pytest.mark.slow
def test_confounded_assignment_warns_and_dr_beats_s_on_the_average_effect(tmp_path_factory):
    """Observational assignment: the overlap warning fires, and DR's average effect is nearer the truth.

    20,000 patients: the planted average effect is small (EGFR benefit and KRAS harm
    nearly cancel), so a smaller cohort's sampling noise would swamp the S-learner's
    bias. Both learners use the same gradient-boosting outcome model.
    """
    folder = cohort(tmp_path_factory, "obs", 20000, confounded=True)
    planted = pl.read_parquet(folder / "ground_truth.parquet")["treatment_effect"].mean()
    errors = {}
    for learner in ("s", "dr"):
        spec = therapy_spec(folder, learner, bootstrap=20)
        spec.write_text(spec.read_text(encoding="utf-8").replace(
            '[model]\nplugin = "model.logistic"', '[model]\nplugin = "model.gbm"\noptions = { max_iter = 100 }'),
            encoding="utf-8")
        with pytest.warns(UserWarning, match="treatment assignment is predictable from the covariates"):
            result = run(spec, overwrite=True)
        assert result.metrics["treatment"]["overlap"]["propensity_auroc"] > 0.7
        effects = pl.read_parquet(result.path / "treatment" / "effects.parquet")
        errors[learner] = abs(effects["effect_targeted"].mean() - planted)
    assert errors["dr"] < errors["s"]


def test_refit_gives_intervals_drivers_and_evidence_for_recommend(small):
    result = run(therapy_spec(small, "t", bags=5, bootstrap=50), overwrite=True)
    recs = pl.read_parquet(result.path / "treatment" / "recommendations.parquet")
    assert (recs["effect_targeted_low"] <= recs["effect_targeted_high"]).all()
    egfr = pl.read_parquet(result.path / "treatment" / "evidence.parquet").filter(pl.col("gene") == "EGFR")["patient_id"][0]
    out = CliRunner().invoke(app, ["recommend", str(result.path), "--patient", egfr], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "osimertinib" in out.output and "FLAURA" in out.output and "recommended" in out.output
    assert "mutation:EGFR" in out.output or "effect change" in out.output
    missing = CliRunner().invoke(app, ["recommend", str(result.path), "--patient", "NOPE"])
    assert missing.exit_code == 1 and "no patient 'NOPE'" in missing.output


def test_treatment_with_too_few_patients_in_a_fold_is_named(small, tmp_path):
    folder = tmp_path / "c"
    shutil.copytree(small, folder, ignore=shutil.ignore_patterns("runs"))
    outcomes = pl.read_csv(folder / "outcomes.csv")
    keep = outcomes.with_columns(treatment=pl.when((pl.col("treatment") == "targeted") & (pl.int_range(pl.len()) > 30))
                                 .then(pl.lit("chemo")).otherwise(pl.col("treatment")))
    keep.write_csv(folder / "outcomes.csv")
    with pytest.raises(DataError, match=r"treatment 'targeted' has \d+ training patient\(s\) \(fewer than treatment.min_arm_size = 20\)"):
        run(therapy_spec(folder, "t", extra="\nmin_arm_size = 20"))


def test_candidate_absent_from_the_data_lists_what_is_there(small):
    spec = therapy_spec(small, "t")
    spec.write_text(spec.read_text(encoding="utf-8").replace('candidates = ["chemo", "targeted"]',
                                                             'candidates = ["chemo", "immunotherapy"]'), encoding="utf-8")
    with pytest.raises(DataError, match=r"\['immunotherapy'\], absent from column 'treatment'.*present: chemo, targeted"):
        run(spec, overwrite=True)


def test_treatment_column_with_missing_values_is_named(small, tmp_path):
    folder = tmp_path / "c"
    shutil.copytree(small, folder, ignore=shutil.ignore_patterns("runs"))
    outcomes = pl.read_csv(folder / "outcomes.csv")
    outcomes.with_columns(treatment=pl.when(pl.int_range(pl.len()) == 6).then(None).otherwise(pl.col("treatment"))) \
        .write_csv(folder / "outcomes.csv")
    with pytest.raises(DataError, match=r"outcomes.csv: line 8 has no value in treatment column 'treatment' \(1 missing\)"):
        run(therapy_spec(folder, "t"))


def test_rules_with_unknown_genes_warn_and_list_them(small):
    spec = therapy_spec(small, "t")
    rules = small / "evidence" / "nsclc-textbook.csv"
    rules.write_text(rules.read_text(encoding="utf-8") + "NOTAGENE1,mutation,x,sensitive,C,made up\n"
                     "ALK,amplification,alectinib,sensitive,A,fusion not in this cohort\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"gene\(s\) found in no omics matrix, so they never match: ALK, NOTAGENE1"):
        result = run(spec, overwrite=True)
    assert result.metrics["treatment"]["evidence"]["unknown_genes"] == ["ALK", "NOTAGENE1"]


def test_rules_can_be_toml(tmp_path):
    from tumorboard_therapy.evidence import read_rules

    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\ngene = "EGFR"\nalteration = "Mutation"\ntherapy = "osimertinib"\n'
                    'direction = "sensitive"\nevidence_level = "A"\nsource = "FLAURA"\n', encoding="utf-8")
    rules = read_rules(path)
    assert rules.row(0, named=True)["alteration"] == "mutation"
    path.write_text(path.read_text(encoding="utf-8").replace('"sensitive"', '"helps"'), encoding="utf-8")
    with pytest.raises(DataError, match="has direction 'helps'; expected one of sensitive, resistant"):
        read_rules(path)


def test_qini_of_a_perfect_ranking_beats_a_random_one():
    from tumorboard_therapy.uplift import qini_coefficient

    rng = np.random.default_rng(0)
    n = 2000
    benefit = rng.random(n) < 0.3  # these respond only when treated
    treated = rng.random(n) < 0.5
    y = (benefit & treated).astype(int)
    assert qini_coefficient(y, treated, benefit.astype(float)) > 0.05
    assert abs(qini_coefficient(y, treated, rng.random(n))) < 0.02
