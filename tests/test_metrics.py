"""Every metric agrees with its reference implementation on random inputs, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tumorboard.data import Target
from tumorboard.metrics import BINARY, estimate, harrell_c, score

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
}


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
            if e[i] and t[i] < t[j]:
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
