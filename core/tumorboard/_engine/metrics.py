"""Metrics per task, with percentile-bootstrap confidence intervals over patients.

Binary predictions are positive-class probabilities (threshold 0.5 for the
label metrics); multiclass predictions are (n, k) probabilities; survival
predictions are risk scores (larger = earlier event).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .bootstrap import (
    BatchFn,
    all_replicates,
    batch_functions,
    binary_log_loss,
    bind_context,
    predicted_labels,
    replicate_values,
    risk_scores,
)
from .data import Target

MetricFn = Callable[[Target, np.ndarray], float]


class _LazySklearnMetrics:
    """sklearn.metrics, imported on first use: importing scikit-learn costs about a second,
    and every command (``tumorboard plugins`` too) imports this module through the API."""

    def __getattr__(self, name: str):
        from sklearn import metrics

        return getattr(metrics, name)


skm = _LazySklearnMetrics()


def _binary_confusion(y: Target, p: np.ndarray) -> tuple[int, int, int, int]:
    pred = predicted_labels(p)
    tp = int(np.sum((pred == 1) & (y.values == 1)))
    tn = int(np.sum((pred == 0) & (y.values == 0)))
    fp = int(np.sum((pred == 1) & (y.values == 0)))
    fn = int(np.sum((pred == 0) & (y.values == 1)))
    return tp, tn, fp, fn


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def harrell_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's concordance index; ties in risk count one half.

    A pair is comparable when patient i had an event before j's time, or at the
    same time as j's censoring (j is known to have outlived i); this is
    scikit-survival's and lifelines' convention. O(n log^2 n) without a Python
    loop over patients (:func:`tumorboard._engine.bootstrap.weighted_concordance`).
    """
    from .bootstrap import weighted_concordance

    return float(weighted_concordance(time, event, risk, np.ones((1, len(time))))[0])


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half)."""
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision, as scikit-learn defines it (a step sum over distinct thresholds)."""
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    last = np.r_[np.flatnonzero(np.diff(ps)), len(ps) - 1]
    tps = np.cumsum(ys)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE: mean |observed rate - mean predicted| over equal-width probability bins, weighted by count.

    For multiclass ``p`` (n, k) it is the top-label ECE (confidence of the
    predicted class against its accuracy).
    """
    if p.ndim == 2:
        conf = p.max(axis=1)
        hit = (np.argmax(p, axis=1) == y).astype(float)
    else:
        conf, hit = p, y.astype(float)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    gap = np.abs(np.bincount(which, hit, bins) - np.bincount(which, conf, bins))
    return float(gap.sum() / len(y))


def _f1(y: Target, p: np.ndarray) -> float:
    tp, _, fp, fn = _binary_confusion(y, p)
    return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0


# binary metrics are plain numpy: the bootstrap calls each thousands of times,
# and scikit-learn's input validation costs more than the metric itself
# (tests check every one against scikit-learn)
BINARY: dict[str, MetricFn] = {
    "auroc": lambda y, p: auroc(y.values, p),
    "auprc": lambda y, p: average_precision(y.values, p),
    "accuracy": lambda y, p: float(np.mean(predicted_labels(p) == y.values)),
    "balanced_accuracy": lambda y, p: 0.5 * (
        _ratio((c := _binary_confusion(y, p))[0], c[0] + c[3]) + _ratio(c[1], c[1] + c[2])
    ),
    "sensitivity": lambda y, p: _ratio((c := _binary_confusion(y, p))[0], c[0] + c[3]),
    "specificity": lambda y, p: _ratio((c := _binary_confusion(y, p))[1], c[1] + c[2]),
    "precision": lambda y, p: _ratio((c := _binary_confusion(y, p))[0], c[0] + c[2]),
    "f1": _f1,
    "f1_macro": lambda y, p: skm.f1_score(y.values, predicted_labels(p), average="macro", zero_division=0.0),
    "f1_weighted": lambda y, p: skm.f1_score(y.values, predicted_labels(p), average="weighted", zero_division=0.0),
    "brier": lambda y, p: float(np.mean((p - y.values) ** 2)),
    "log_loss": lambda y, p: float(np.mean(binary_log_loss(y.values, p))),
    "ece": lambda y, p: expected_calibration_error(y.values, p),
}

MULTICLASS: dict[str, MetricFn] = {
    "accuracy": lambda y, p: skm.accuracy_score(y.values, predicted_labels(p)),
    "balanced_accuracy": lambda y, p: skm.balanced_accuracy_score(y.values, predicted_labels(p)),
    "auroc": lambda y, p: skm.roc_auc_score(
        y.values, p, multi_class="ovr", labels=list(range(p.shape[1]))
    ),
    "f1_macro": lambda y, p: skm.f1_score(y.values, predicted_labels(p), average="macro", zero_division=0.0),
    "f1_weighted": lambda y, p: skm.f1_score(
        y.values, predicted_labels(p), average="weighted", zero_division=0.0
    ),
    "log_loss": lambda y, p: skm.log_loss(y.values, p, labels=list(range(p.shape[1]))),
    "brier": lambda y, p: float(np.mean(np.sum((p - np.eye(p.shape[1])[y.values]) ** 2, axis=1))),
    "ece": lambda y, p: expected_calibration_error(y.values, p),
}

REGRESSION: dict[str, MetricFn] = {
    "mae": lambda y, p: skm.mean_absolute_error(y.values, p),
    "rmse": lambda y, p: float(np.sqrt(skm.mean_squared_error(y.values, p))),
    "r2": lambda y, p: skm.r2_score(y.values, p),
}

def _surv(y: Target):
    from sksurv.util import Surv

    return Surv.from_arrays(event=y.event.astype(bool), time=y.values.astype(np.float64))


@dataclass(frozen=True)
class SurvivalContext:
    """What survival metrics need beyond one sample: the censoring reference, horizons, time grid.

    ``reference`` is the target of every patient in the run: its censoring
    distribution weights Uno's C, the time-dependent AUC and the Brier score
    (inverse probability of censoring weights).
    """

    reference: Target
    horizons: tuple[float, ...]
    times: tuple[float, ...]


def _uno_c(ctx: SurvivalContext, y: Target, p: np.ndarray) -> float:
    from sksurv.metrics import concordance_index_ipcw

    tau = max(ctx.horizons) if ctx.horizons else None
    return float(concordance_index_ipcw(_surv(ctx.reference), _surv(y), risk_scores(p), tau=tau)[0])


def _td_auc(ctx: SurvivalContext, y: Target, p: np.ndarray) -> float:
    from sksurv.metrics import cumulative_dynamic_auc

    times = np.array([t for t in ctx.horizons if y.values.min() <= t < y.values.max()])
    if len(times) == 0:
        return float("nan")
    return float(cumulative_dynamic_auc(_surv(ctx.reference), _surv(y), risk_scores(p), times)[1])


def _ibs(ctx: SurvivalContext, y: Target, p: np.ndarray) -> float:
    from sksurv.metrics import integrated_brier_score

    if p.ndim == 1:
        return float("nan")  # the model gives no survival curves
    grid = np.asarray(ctx.times)
    keep = (grid >= y.values.min()) & (grid < y.values.max())
    if keep.sum() < 2:
        return float("nan")
    return float(integrated_brier_score(_surv(ctx.reference), _surv(y), p[:, 1:][:, keep], grid[keep]))


SURVIVAL: dict[str, MetricFn] = {
    "c_index": lambda y, p: harrell_c(y.values, y.event, risk_scores(p)),  # type: ignore[arg-type]
    # bound to a SurvivalContext by metric_functions(); listed here so specs can name them
    "uno_c": _uno_c,  # type: ignore[dict-item]
    "td_auc": _td_auc,  # type: ignore[dict-item]
    "ibs": _ibs,  # type: ignore[dict-item]
}
def metric_functions(task: str, context: SurvivalContext | None = None) -> dict[str, MetricFn]:
    """The metric functions of a task, with survival metrics bound to their context."""
    return bind_context(METRICS[task], task, context)

METRICS: dict[str, dict[str, MetricFn]] = {
    "binary": BINARY,
    "multiclass": MULTICLASS,
    "regression": REGRESSION,
    "survival": SURVIVAL,
}

DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auroc", "auprc", "accuracy", "brier"),
    "multiclass": ("accuracy", "balanced_accuracy", "auroc"),
    "regression": ("mae", "rmse", "r2"),
    "survival": ("c_index", "uno_c", "td_auc", "ibs"),
}

GREATER_IS_BETTER = {"brier": False, "log_loss": False, "mae": False, "rmse": False, "ece": False, "ibs": False}


def score(task: str, metric: str, y: Target, prediction: np.ndarray, fn: MetricFn | None = None) -> float:
    """One metric on one set of predictions (nan when undefined, e.g. one class only)."""
    if fn is None:
        fns = metric_functions(task)
        if metric not in fns:
            raise ValueError(f"metric {metric!r} needs the run's survival context (censoring, horizons); "
                             f"use one of {', '.join(fns)} here")
        fn = fns[metric]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(fn(y, np.asarray(prediction)))
        except ValueError:
            return float("nan")


@dataclass(frozen=True)
class Estimate:
    """A metric's value with its bootstrap confidence interval."""

    value: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        def clean(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 6)

        return {"value": clean(self.value), "ci_low": clean(self.ci_low), "ci_high": clean(self.ci_high), "n": self.n}


def estimate(
    task: str,
    metric: str,
    y: Target,
    predictions: list[np.ndarray],
    *,
    bootstrap: int,
    confidence: float,
    rng: np.random.Generator,
    fn: MetricFn | None = None,
    batch: BatchFn | None = None,
) -> Estimate:
    """A metric averaged over repeats, with a percentile bootstrap CI over patients.

    ``predictions`` holds one array per repeat, each aligned with ``y``. Each
    bootstrap replicate resamples patients once and scores every repeat on that
    same sample, so the interval reflects patient sampling, not fold noise.
    Replicates are computed in batches (:mod:`tumorboard._engine.bootstrap`): ``fn`` and
    ``batch`` are the metric's one-sample and batched forms, looked up by name
    when not given (survival metrics that need the run's context must be given).
    """
    fn, batch = _functions(task, metric, fn, batch)

    def value() -> float:
        return float(np.nanmean([score(task, metric, y, p, fn) for p in predictions]))

    def replicates(W: np.ndarray) -> np.ndarray:
        return replicate_values(batch, y, predictions, W)

    return _bootstrap(value, replicates, len(y), bootstrap, confidence, rng)


def paired_difference(
    task: str,
    metric: str,
    y: Target,
    predictions: list[np.ndarray],
    baseline: list[np.ndarray],
    *,
    bootstrap: int,
    confidence: float,
    rng: np.random.Generator,
    fn: MetricFn | None = None,
    batch: BatchFn | None = None,
) -> Estimate:
    """metric(predictions) - metric(baseline) on the same patients, with a paired bootstrap CI.

    Each replicate resamples patients once and scores both on that sample, so
    the interval is for the difference itself (much narrower than two
    overlapping intervals suggest when the two predictions are correlated).
    """
    fn, batch = _functions(task, metric, fn, batch)

    def value() -> float:
        def mean(preds: list[np.ndarray]) -> float:
            return float(np.nanmean([score(task, metric, y, p, fn) for p in preds]))
        return mean(predictions) - mean(baseline)

    def replicates(W: np.ndarray) -> np.ndarray:
        return replicate_values(batch, y, predictions, W) - replicate_values(batch, y, baseline, W)

    return _bootstrap(value, replicates, len(y), bootstrap, confidence, rng)


def _functions(task: str, metric: str, fn: MetricFn | None, batch: BatchFn | None) -> tuple[MetricFn, BatchFn]:
    return fn or metric_functions(task)[metric], batch or batch_functions(task)[metric]


def _bootstrap(value: Callable[[], float], replicates: Callable[[np.ndarray], np.ndarray], n: int, bootstrap: int,
               confidence: float, rng: np.random.Generator) -> Estimate:
    """``value()`` on all patients, with a percentile CI over the replicates' values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        point = value()
        if bootstrap == 0 or n < 2:
            return Estimate(point, float("nan"), float("nan"), n)
        values = all_replicates(replicates, rng, n, bootstrap)
    values = values[np.isfinite(values)]
    if len(values) < max(10, bootstrap // 10):
        return Estimate(point, float("nan"), float("nan"), n)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return Estimate(point, float(low), float(high), n)
