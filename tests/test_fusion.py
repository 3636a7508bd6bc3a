"""Fusion strategies (concat, nested stacking, attention), missing modalities, and the engine's ablation."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tumorboard.api import FeatureBlock, Target
from tumorboard._engine.engine import run
from tumorboard._engine.metrics import paired_difference
from tumorboard_synth import SynthOptions, generate
from tumorboard.testing import parametrize_with_checks
from tumorboard_fusion.attention import AttentionFusion
from tumorboard_fusion.stacking import StackingFusion

COHORT = generate(Path(tempfile.mkdtemp(prefix="tumorboard-fusion-")) / "c",
                  SynthOptions(patients=600, seed=12, images=False))
TINY_ATTENTION = {"width": 8, "heads": 2, "epochs": 5, "patience": 2}


@parametrize_with_checks([StackingFusion(inner_folds=3), AttentionFusion(**TINY_ATTENTION)],
                         tasks=["binary", "survival"], other_tasks_marks=[pytest.mark.slow])
# learned from the target: a classification and a survival task (the other two in the kit's default for plugins)
def test_follows_the_component_contract(component, check):
    check(component)


def spec(tmp_path: Path, fusion: str, outcomes: Path | None = None, ablation: bool = False,
         fusion_options: str = "{}") -> Path:
    path = tmp_path / f"{fusion}.toml"
    path.write_text(f"""
[run]
name = "fusion-test"
task = "binary"
seed = 3
output = "{(tmp_path / ('run-' + fusion)).as_posix()}"
[cohort]
outcomes = "{(outcomes or COHORT / 'outcomes.csv').as_posix()}"
target = "response"
[[modality]]
name = "clinical"
plugin = "tabular.file"
options = {{ path = "{(COHORT / 'tables' / 'clinical_baseline.csv').as_posix()}" }}
[[modality]]
name = "mutation"
plugin = "tabular.file"
options = {{ path = "{(COHORT / 'omics' / 'mutation.parquet').as_posix()}", scale = false, missing_indicators = false }}
[[modality]]
name = "rna"
plugin = "omics.pca"
options = {{ layers = [{{ name = "rna", path = "{(COHORT / 'omics' / 'rna.parquet').as_posix()}" }}], components = 8 }}
[fusion]
plugin = "{fusion}"
options = {fusion_options}
[model]
plugin = "model.logistic"
options = {{ C = 0.05 }}
[evaluation]
folds = 5
bootstrap = 300
ablation = {str(ablation).lower()}
metrics = ["auroc"]
""", encoding="utf-8")
    return path


def test_ablation_shows_the_multimodal_gain(tmp_path):
    # stacking weighs each modality by how well it predicts on its own, so the mutation block (whose
    # planted effect is an interaction with treatment, invisible to a main-effects model) cannot dilute it
    result = run(spec(tmp_path, "fusion.stacking", ablation=True))
    ab = result.metrics["ablation"]
    assert set(ab["subsets"]) == {"clinical", "mutation", "rna", "all but clinical", "all but mutation", "all but rna"}
    assert ab["best_single"] == "clinical"  # the largest planted share among these three
    gain = ab["gain_over_best_single"]["auroc"]
    print("gain over the best single modality", gain)
    assert gain["ci_low"] > 0  # all modalities beat the best one alone, paired 95% CI excluding zero
    saved = json.loads((result.path / "metrics.json").read_text(encoding="utf-8"))
    assert saved["ablation"]["best_single"] == "clinical"
    folds = saved["per_fold"]["auroc"]
    assert len(folds["values"]) == 5 and folds["mean"] == pytest.approx(np.mean(folds["values"]))
    assert folds["sd"] == pytest.approx(np.std(folds["values"], ddof=1))
    report = (result.path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Modality ablation</h2>" in report and 'alt="modality ablation"' in report
    assert "all but mutation" in report  # the table lists every subset with its paired gain


def test_ablation_needs_two_modalities(tmp_path):
    text = spec(tmp_path, "fusion.concat", ablation=True).read_text(encoding="utf-8")
    one = text.split("[[modality]]")[0] + "[[modality]]" + text.split("[[modality]]")[1] + "[fusion]" + text.split("[fusion]")[1]
    (tmp_path / "one.toml").write_text(one, encoding="utf-8")
    result = run(tmp_path / "one.toml")
    assert "ablation" not in result.metrics
    assert any("ablation needs at least two modalities" in w for w in result.warnings)


def test_nested_stacking_scores_at_chance_on_permuted_labels(tmp_path):
    outcomes = pl.read_csv(COHORT / "outcomes.csv")
    rng = np.random.default_rng(0)
    outcomes.with_columns(pl.Series("response", rng.permutation(outcomes["response"].to_numpy()))).write_csv(tmp_path / "perm.csv")
    result = run(spec(tmp_path, "fusion.stacking", outcomes=tmp_path / "perm.csv"))
    auroc = result.metrics["overall"]["auroc"]["value"]
    print("permuted-label AUROC with nested stacking", auroc)
    assert 0.40 <= auroc <= 0.60


def _two_blocks(n: int = 200, seed: int = 0) -> tuple[list[FeatureBlock], Target]:
    rng = np.random.default_rng(seed)
    ids = [f"P{i}" for i in range(n)]
    a, b = rng.normal(size=(n, 3)), rng.normal(size=(n, 4))
    y = (a[:, 0] + b[:, 0] + rng.normal(0, 0.5, n) > 0).astype(int)
    present_b = rng.random(n) > 0.3
    b[~present_b] = np.nan
    return ([FeatureBlock(ids, a, ["a0", "a1", "a2"], np.ones(n, bool), "A"),
             FeatureBlock(ids, b, ["b0", "b1", "b2", "b3"], present_b, "B")], Target("binary", y, None, ("0", "1")))


def test_stacking_trains_the_meta_model_on_cross_fitted_predictions():
    blocks, y = _two_blocks()
    fusion = StackingFusion(inner_folds=5)
    cross_fitted = fusion.fit_transform(blocks, y)
    refitted = fusion.transform(blocks)
    # the same patients, two different things: out-of-fold scores for the meta-model, refitted scores for others
    col = cross_fitted.feature_names.index("A:score")
    assert not np.allclose(cross_fitted.values[:, col], refitted.values[:, col])
    assert np.corrcoef(cross_fitted.values[:, col], refitted.values[:, col])[0, 1] > 0.8
    # a patient without B: its score is the training average (0) and its presence column 0
    absent = ~blocks[1].presence
    b_score, b_present = cross_fitted.feature_names.index("B:score"), cross_fitted.feature_names.index("B:present")
    assert (refitted.values[absent, b_score] == 0).all() and (refitted.values[absent, b_present] == 0).all()


@pytest.mark.slow  # over 10 s on 2 cores: trains a Flax network
def test_attention_ignores_an_absent_modality_and_learns():
    blocks, y = _two_blocks(400)
    fusion = AttentionFusion(width=16, heads=2, epochs=80, patience=15).fit(blocks, y)
    out = fusion.transform(blocks)
    changed = [blocks[0], FeatureBlock(blocks[1].ids, np.where(blocks[1].presence[:, None], blocks[1].values, 99.0),
                                       blocks[1].feature_names, blocks[1].presence, "B")]
    absent = ~blocks[1].presence
    np.testing.assert_allclose(fusion.transform(changed).values[absent], out.values[absent], rtol=1e-5, atol=1e-5)
    from sklearn.metrics import roc_auc_score

    head = out.values[:, out.feature_names.index("attention:head")]
    assert roc_auc_score(y.values, head) > 0.8


def test_paired_difference_is_zero_for_identical_predictions_and_positive_for_a_better_one():
    rng = np.random.default_rng(1)
    y = Target("binary", rng.integers(0, 2, 300), None, ("0", "1"))
    good = y.values + rng.normal(0, 0.5, 300)
    poor = y.values + rng.normal(0, 2.0, 300)
    same = paired_difference("binary", "auroc", y, [good], [good], bootstrap=200, confidence=0.95, rng=np.random.default_rng(0))
    assert same.value == 0 and same.ci_low == 0 and same.ci_high == 0
    gain = paired_difference("binary", "auroc", y, [good], [poor], bootstrap=200, confidence=0.95, rng=np.random.default_rng(0))
    assert gain.value > 0.1 and gain.ci_low > 0
