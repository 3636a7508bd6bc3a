"""Batched bootstrap replicates equal the per-replicate loop's, for every metric of every task.

The reference here is the loop the engine ran before replicates were batched:
one ``rng.integers(0, n, n)`` per replicate, each metric scored on the resampled
patients by its ordinary (one-sample) function.
"""

from __future__ import annotations

import numpy as np
import pytest

from tumorboard._engine.bootstrap import (
    BATCHES,
    batch_functions,
    replicate_values,
    resampling_weights,
    weighted_concordance,
)
from tumorboard._engine.data import Target
from tumorboard._engine.evaluation import survival_context
from tumorboard._engine.metrics import estimate, harrell_c, metric_functions, paired_difference, score

# metrics whose batched sums are over integer counts: equal to the last bit
EXACT = {("binary", m) for m in ("auroc", "accuracy", "balanced_accuracy", "sensitivity", "specificity",
                                  "precision", "f1")} | {("multiclass", "accuracy"), ("survival", "c_index")}


def loop_replicates(task, metric, y, predictions, fn, seed, count):
    rng = np.random.default_rng(seed)
    out = []
    n = len(y)
    for _ in range(count):
        idx = rng.integers(0, n, n)
        yy = y.take(idx)
        out.append(np.nanmean([score(task, metric, yy, p[idx], fn) for p in predictions]))
    return np.array(out)


def batched_replicates(task, metric, y, predictions, batch, seed, count):
    rng = np.random.default_rng(seed)
    return np.concatenate([replicate_values(batch, y, predictions, W) for W in resampling_weights(rng, len(y), count)])


def case(task, seed, n=120):
    """A target and two repeats' predictions with ties (rounded scores) and, for survival, curves."""
    rng = np.random.default_rng(seed)
    if task == "binary":
        y = Target("binary", (rng.random(n) < 0.35).astype(np.int64), None, ("0", "1"))
        preds = [np.round(np.clip(0.3 * y.values + 0.7 * rng.random(n), 0.01, 0.99), 2) for _ in range(2)]
        return y, preds, None
    if task == "multiclass":
        y = Target("multiclass", rng.integers(0, 3, n), None, ("a", "b", "c"))
        preds = []
        for _ in range(2):
            raw = rng.random((n, 3)) + np.eye(3)[y.values] * 0.8
            preds.append(np.round(raw / raw.sum(axis=1, keepdims=True), 3))
            preds[-1] = preds[-1] / preds[-1].sum(axis=1, keepdims=True)
        return y, preds, None
    if task == "regression":
        y = Target("regression", rng.standard_normal(n), None, ())
        return y, [y.values + rng.standard_normal(n) for _ in range(2)], None
    risk = rng.standard_normal(n)
    time = np.round(rng.exponential(np.exp(-risk)) * 100) + 1  # ties in time
    event = rng.random(n) < 0.7
    y = Target("survival", time.astype(np.float64), event, ())
    context = survival_context(y, None)
    grid = np.asarray(context.times)
    preds = []
    for _ in range(2):
        r = np.round(risk + 0.7 * rng.standard_normal(n), 1)  # ties in risk
        curves = np.exp(-np.outer(np.exp(r), grid) / 150.0)
        preds.append(np.column_stack([r, curves]))
    return y, preds, context


TASK_METRICS = [(task, m) for task in BATCHES for m in sorted(BATCHES[task])]


@pytest.mark.parametrize(("task", "metric"), TASK_METRICS)
def test_batched_replicates_equal_the_loop(task, metric):
    for seed in (0, 1):
        y, preds, context = case(task, seed)
        fn = metric_functions(task, context)[metric]
        batch = batch_functions(task, context)[metric]
        old = loop_replicates(task, metric, y, preds, fn, seed, 40)
        new = batched_replicates(task, metric, y, preds, batch, seed, 40)
        assert np.isfinite(old).sum() > 20, "the reference must be defined on most replicates"
        if (task, metric) in EXACT:
            np.testing.assert_array_equal(new, old)
        else:
            np.testing.assert_allclose(new, old, rtol=1e-11, atol=1e-14, equal_nan=True)


@pytest.mark.parametrize(("task", "metric"), TASK_METRICS)
def test_estimates_are_the_loop_estimates(task, metric):
    """The published figures (rounded to 6 decimals) are unchanged by batching."""
    y, preds, context = case(task, 3, n=90)
    fn = metric_functions(task, context)[metric]
    batch = batch_functions(task, context)[metric]
    old = loop_replicates(task, metric, y, preds, fn, 7, 200)
    old = old[np.isfinite(old)]
    low, high = np.quantile(old, [0.025, 0.975])
    new = estimate(task, metric, y, preds, bootstrap=200, confidence=0.95, rng=np.random.default_rng(7),
                   fn=fn, batch=batch)
    assert new.as_dict()["ci_low"] == round(float(low), 6)
    assert new.as_dict()["ci_high"] == round(float(high), 6)


def test_paired_difference_uses_the_same_resamples_for_both():
    y, preds, context = case("binary", 4)
    same = paired_difference("binary", "auroc", y, preds, preds, bootstrap=100, confidence=0.95,
                             rng=np.random.default_rng(0))
    assert same.value == 0 and same.ci_low == 0 and same.ci_high == 0


def pair_count_c(t, e, r):
    num = den = 0.0
    for i in range(len(t)):
        for j in range(len(t)):
            if e[i] and (t[i] < t[j] or (t[i] == t[j] and not e[j])):
                den += 1
                num += 1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0
    return num / den


def test_fast_concordance_equals_the_pair_count_and_scikit_survival():
    from sksurv.metrics import concordance_index_censored

    rng = np.random.default_rng(5)
    for n in (2, 7, 60, 301):
        t = rng.integers(1, 25, n).astype(float)
        e = rng.random(n) < 0.6
        e[0] = True
        r = np.round(rng.standard_normal(n), 1)
        assert harrell_c(t, e, r) == pair_count_c(t, e, r)
        assert harrell_c(t, e, r) == pytest.approx(concordance_index_censored(e, t, r)[0], rel=1e-12)


def test_weighted_concordance_counts_each_drawn_copy():
    """Weights of 2 give the C-index of the data with that patient duplicated."""
    rng = np.random.default_rng(6)
    t = rng.integers(1, 20, 40).astype(float)
    e = rng.random(40) < 0.6
    r = np.round(rng.standard_normal(40), 1)
    w = rng.integers(0, 3, 40)
    idx = np.repeat(np.arange(40), w)
    assert weighted_concordance(t, e, r, w[None, :].astype(float))[0] == pair_count_c(t[idx], e[idx], r[idx])


def test_no_events_and_a_single_class_give_undefined_replicates():
    y = Target("survival", np.arange(1.0, 11.0), np.zeros(10, dtype=bool), ())
    assert np.isnan(batch_functions("survival")["c_index"](y, np.arange(10.0), np.ones((3, 10)))).all()
    yb = Target("binary", np.ones(10, dtype=np.int64), None, ("0", "1"))
    assert np.isnan(batch_functions("binary")["auroc"](yb, np.linspace(0, 1, 10), np.ones((2, 10)))).all()


def test_a_bootstrap_on_workers_gives_the_same_replicates(monkeypatch):
    """Parts of one bootstrap on two worker processes: the parent's generator states, the same values."""
    import tumorboard._engine.bootstrap as bootstrap
    from tumorboard._engine.execution import Executor, using

    y, preds, context = case("survival", 8, n=150)
    fn = metric_functions("survival", context)["uno_c"]
    batch = batch_functions("survival", context)["uno_c"]
    here = estimate("survival", "uno_c", y, preds, bootstrap=90, confidence=0.95, rng=np.random.default_rng(3),
                    fn=fn, batch=batch)
    monkeypatch.setattr(bootstrap, "PARALLEL_CELLS", 0)  # this small bootstrap would otherwise stay here
    rng = np.random.default_rng(3)
    with using(Executor("local", workers=2, threads=1)):
        there = estimate("survival", "uno_c", y, preds, bootstrap=90, confidence=0.95, rng=rng, fn=fn, batch=batch)
    assert there == here
    follow = np.random.default_rng(3)
    for W in resampling_weights(follow, len(y), 90):
        pass
    assert rng.integers(0, 2**32) == follow.integers(0, 2**32)  # the parent's generator advanced as the loop's
