"""Every metric agrees with its reference implementation on random inputs, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tumorboard._engine.data import Target
from tumorboard._engine.metrics import BINARY, estimate, harrell_c, score

REFERENCE = {
    "auroc": lambda y, p: skm.roc_auc_score(y, p),
    "auprc": lambda y, p: skm.average_precision_score(y, p),
    "accuracy": lambda y, p: skm.accuracy_score(y, p >= 0.5),
    "balanced_accuracy": lambda y, p: skm.balanced_accuracy_score(y, p >= 0.5),
    "sensitivity": lambda y, p: skm.recall_score(y, p >= 0.5),
    "specificity": lambda y, p: skm.recall_score(1 - y, p < 0.5),
    "precision": lambda y, p: skm.precision_score(y, p >= 0.5, zero_division=np.nan),
    "f1": lambda y, p: skm.f1_score(y, p >= 0.5, zero_division=0.0),
    "brier": lambda y, p: skm.brier_score_loss(y, p),
    "log_loss": lambda y, p: skm.log_loss(y, p, labels=[0, 1]),
    "f1_macro": lambda y, p: skm.f1_score(y, p >= 0.5, average="macro", zero_division=0.0),
    "f1_weighted": lambda y, p: skm.f1_score(y, p >= 0.5, average="weighted", zero_division=0.0),
    "ece": lambda y, p: ece_by_loop(y, p),
}


def ece_by_loop(y, p, bins=10):
    """The textbook definition, written independently: sum over bins of |B|/n |acc(B) - conf(B)|."""
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        sel = (p >= lo) & ((p < hi) if b < bins - 1 else (p <= hi))
        if sel.any():
            total += sel.sum() / len(p) * abs(y[sel].mean() - p[sel].mean())
    return total


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_metric_matches_scikit_learn(name, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(np.int64)
    p = np.round(np.clip(0.3 * y + rng.random(n) * 0.7, 0.01, 0.99), 2)  # rounding makes ties
    ours = score("binary", name, Target("binary", y, None, ("0", "1")), p)
    assert ours == pytest.approx(REFERENCE[name](y, p), rel=1e-9, abs=1e-12)


def test_harrell_c_matches_a_direct_pair_count():
    rng = np.random.default_rng(0)
    t = rng.integers(1, 30, 80).astype(float)  # ties in time
    e = rng.random(80) < 0.6
    r = np.round(rng.standard_normal(80), 1)  # ties in risk
    num = den = 0.0
    for i in range(80):
        for j in range(80):
            if e[i] and (t[i] < t[j] or (t[i] == t[j] and not e[j])):
                den += 1
                num += 1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0
    assert harrell_c(t, e, r) == pytest.approx(num / den)


def test_bootstrap_interval_covers_the_value_and_narrows_with_n():
    rng = np.random.default_rng(1)
    widths = []
    for n in (100, 1600):
        y = (rng.random(n) < 0.5).astype(np.int64)
        p = np.clip(0.25 * y + 0.75 * rng.random(n), 0, 1)
        est = estimate("binary", "auroc", Target("binary", y, None, ("0", "1")), [p],
                       bootstrap=400, confidence=0.95, rng=np.random.default_rng(0))
        assert est.ci_low < est.value < est.ci_high
        widths.append(est.ci_high - est.ci_low)
    assert widths[1] < widths[0] / 2.5  # about 1/sqrt(16) = 1/4 as wide


def random_survival(seed, n=150):
    rng = np.random.default_rng(seed)
    risk = rng.standard_normal(n)
    time = np.round(rng.exponential(20 * np.exp(-0.7 * risk)) + 0.5, 1)
    event = rng.random(n) < 0.7
    return Target("survival", time, event.astype(np.int64)), risk


@pytest.mark.parametrize("seed", range(3))
def test_survival_metrics_match_scikit_survival(seed):
    from sksurv.metrics import (
        concordance_index_censored, concordance_index_ipcw, cumulative_dynamic_auc, integrated_brier_score,
    )
    from sksurv.util import Surv

    from tumorboard._engine.evaluation import survival_context
    from tumorboard._engine.metrics import metric_functions

    y, risk = random_survival(seed)
    context = survival_context(y, None)
    fns = metric_functions("survival", context)
    s = Surv.from_arrays(y.event.astype(bool), y.values)
    assert score("survival", "c_index", y, risk) == pytest.approx(concordance_index_censored(s["event"], s["time"], risk)[0])
    assert fns["uno_c"](y, risk) == pytest.approx(concordance_index_ipcw(s, s, risk, tau=max(context.horizons))[0])
    assert fns["td_auc"](y, risk) == pytest.approx(cumulative_dynamic_auc(s, s, risk, np.array(context.horizons))[1])
    times = np.array(context.times)
    curves = np.exp(-np.outer(np.exp(risk), times) / 20)
    packed = np.column_stack([risk, curves])
    assert fns["ibs"](y, packed) == pytest.approx(integrated_brier_score(s, s, curves, times))


@pytest.mark.parametrize("seed", range(3))
def test_multiclass_and_regression_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = 120
    y = rng.integers(0, 3, n)
    p = rng.dirichlet([1, 1, 1], n)
    t = Target("multiclass", y, None, ("a", "b", "c"))
    assert score("multiclass", "auroc", t, p) == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    assert score("multiclass", "f1_macro", t, p) == pytest.approx(skm.f1_score(y, p.argmax(1), average="macro"))
    assert score("multiclass", "log_loss", t, p) == pytest.approx(skm.log_loss(y, p))
    assert score("multiclass", "brier", t, p) == pytest.approx(np.mean(np.sum((p - np.eye(3)[y]) ** 2, axis=1)))
    v = rng.standard_normal(n)
    r = Target("regression", v)
    pred = v + rng.standard_normal(n) * 0.3
    assert score("regression", "rmse", r, pred) == pytest.approx(np.sqrt(skm.mean_squared_error(v, pred)))
    assert score("regression", "r2", r, pred) == pytest.approx(skm.r2_score(v, pred))


def test_decision_curve_matches_the_net_benefit_formula():
    from tumorboard._engine.evaluation import decision_curve

    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(int)
    p = np.clip(0.4 * y + 0.6 * rng.random(200), 0, 1)
    curve = decision_curve(y, p, np.array([0.2]))
    tp = np.sum((p >= 0.2) & (y == 1)) / 200
    fp = np.sum((p >= 0.2) & (y == 0)) / 200
    assert curve["model"][0] == pytest.approx(tp - fp * 0.25, abs=1e-6)
    assert curve["treat_all"][0] == pytest.approx(y.mean() - (1 - y.mean()) * 0.25, abs=1e-6)


def test_equalized_odds_difference_is_the_largest_rate_gap():
    from tumorboard._engine.evaluation import equalized_odds

    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.9, 0.1, 0.9, 0.1])
    g = np.array(["a"] * 4 + ["b"] * 4)
    out = equalized_odds(y, p, g)
    assert out["tpr"] == {"a": 1.0, "b": 0.5} and out["fpr"] == {"a": 0.0, "b": 0.5}
    assert out["difference"] == 0.5


def test_pooled_c_index_far_from_the_per_fold_mean_is_a_warning():
    """Two folds ranked perfectly within themselves but on shifted scales: per-fold C is 1, pooled is not."""
    import warnings

    from tumorboard._engine.data import Cohort
    from tumorboard._engine.evaluation import check_pooled_against_folds, collect, compute_metrics, per_fold_metrics
    from tumorboard._engine.splits import Fold

    rng = np.random.default_rng(0)
    n = 120
    time = rng.exponential(10, n) + 0.1
    event = rng.random(n) < 0.8
    y = Target("survival", time, event, ())
    cohort = Cohort(tuple(f"P{i}" for i in range(n)), y, {}, None, None)
    idx = rng.permutation(n)
    folds = [Fold(0, k, idx[(k + 1) % 2::2], idx[k::2], label=f"fold {k + 1}") for k in range(2)]
    # risk = -time within each fold (perfect), the second fold shifted far up
    preds = {(0, k, "test"): -time[f.test] + (1000.0 if k == 1 else 0.0) for k, f in enumerate(folds)}

    class Evaluation:
        bootstrap, confidence, min_subgroup_size = 50, 0.95, 30

    notes: list[str] = []
    overall = compute_metrics(cohort, collect(folds, preds, "test"), ["c_index"], Evaluation, 0, notes,
                              audit=False)["overall"]
    per_fold = per_fold_metrics(cohort, folds, preds, ["c_index"])
    assert per_fold["c_index"]["mean"] == 1.0 and overall["c_index"]["value"] < 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_fold["c_index"]["sd"] = 0.01
        assert check_pooled_against_folds("survival", overall, per_fold, notes) == {"c_index": True}
    assert "quote the per-fold mean" in notes[-1]
    close = {"c_index": {"value": 0.7}}
    assert check_pooled_against_folds("survival", close, {"c_index": {"mean": 0.705, "sd": 0.02}}, []) == {"c_index": False}
