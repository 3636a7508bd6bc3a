"""Scoring out-of-fold predictions: metrics with CIs, subgroup audit, curves, risk groups.

Everything here reads predictions the engine already made on test patients;
nothing is fitted on them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bootstrap import batch_functions
from .data import Cohort, Target
from .errors import TumorboardWarning
from .metrics import (
    GREATER_IS_BETTER,
    MetricFn,
    SurvivalContext,
    estimate,
    expected_calibration_error,
    metric_functions,
    paired_difference,
    score,
)
from .splits import Fold


def warn(message: str, notes: list[str]) -> None:
    """Record a note for metrics.json and raise it as a TumorboardWarning."""
    notes.append(message)
    warnings.warn(message, TumorboardWarning, stacklevel=3)


@dataclass
class Scored:
    """Out-of-fold predictions of one set, one array per repeat, aligned with ``index``."""

    index: np.ndarray
    per_repeat: list[np.ndarray]

    def mean(self) -> np.ndarray:
        """Predictions averaged over repeats (one per patient)."""
        return np.mean(self.per_repeat, axis=0)


def collect(folds: list[Fold], fold_preds: dict[tuple[int, int, str], np.ndarray], set_name: str) -> Scored | None:
    """Gather the per-fold predictions of one set into per-repeat arrays in cohort order."""
    per_repeat = []
    index = None
    for r in sorted({f.repeat for f in folds}):
        chunks = [(f, fold_preds[(r, f.fold, set_name)]) for f in folds
                  if f.repeat == r and (r, f.fold, set_name) in fold_preds]
        if not chunks:
            return None
        idx = np.concatenate([(f.test if set_name == "test" else f.extra[set_name]) for f, _ in chunks])
        pred = np.concatenate([p for _, p in chunks])
        order = np.argsort(idx, kind="stable")
        if index is None:
            index = idx[order]
        per_repeat.append(pred[order])
    return Scored(index, per_repeat)  # type: ignore[arg-type]


def survival_context(target: Target, horizons: list[float] | None) -> SurvivalContext:
    """Horizons (default: quartiles of event times) and a time grid for the Brier score."""
    events = target.values[target.event.astype(bool)]  # type: ignore[union-attr]
    if horizons:
        chosen = tuple(float(h) for h in horizons)
    else:
        chosen = tuple(float(round(v, 4)) for v in np.quantile(events, [0.25, 0.5, 0.75]))
    grid = tuple(float(v) for v in np.quantile(events, np.linspace(0.1, 0.8, 15)))
    return SurvivalContext(target, chosen, grid)


def per_fold_metrics(cohort: Cohort, folds: list[Fold], fold_preds: dict[tuple[int, int, str], np.ndarray],
                     metric_names: list[str], context: SurvivalContext | None = None) -> dict[str, Any]:
    """Each metric on each fold's test patients, with the mean and sample SD over folds.

    The figure published cross-validation studies report (mean +/- SD of the
    per-fold values), beside the pooled out-of-fold estimate with its CI.
    """
    task = cohort.target.kind
    fns = metric_functions(task, context)
    result: dict[str, Any] = {}
    for m in metric_names:
        values = []
        for fold in folds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                values.append(float(score(task, m, cohort.target.take(fold.test),
                                          fold_preds[(fold.repeat, fold.fold, "test")], fns[m])))
        finite = np.array([v for v in values if np.isfinite(v)])
        result[m] = {"values": values, "labels": [f.label for f in folds],
                     "mean": float(finite.mean()) if len(finite) else float("nan"),
                     "sd": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")}
    return result


# rank metrics that compare patients across folds when pooled: scale shifts between folds move them
POOLED_RANK_METRICS = ("c_index", "uno_c")


def check_pooled_against_folds(task: str, overall: dict[str, Any], per_fold: dict[str, Any],
                               notes: list[str]) -> dict[str, bool]:
    """Warn when a survival rank metric pooled over folds and its per-fold mean differ by more than the
    per-fold SD: each fold's model put its risks on its own scale (stacking does), so pooling compares
    patients across scales and the per-fold mean +/- SD is the figure to quote."""
    flagged: dict[str, bool] = {}
    if task != "survival":
        return flagged
    for m in POOLED_RANK_METRICS:
        if m not in overall or m not in per_fold:
            continue
        pooled, mean, sd = overall[m]["value"], per_fold[m]["mean"], per_fold[m]["sd"]
        if pooled is None or not np.isfinite(mean) or not np.isfinite(sd):
            continue
        flagged[m] = bool(abs(pooled - mean) > max(sd, 0.005))  # (a floor: folds that agree exactly have SD 0)
        if flagged[m]:
            warn(f"{m}: the pooled out-of-fold value {pooled:.3f} and the mean of the per-fold values {mean:.3f} "
                 f"differ by more than their spread (SD {sd:.3f}): the folds' risk scores are on different scales, "
                 "so pooling compares patients across scales; quote the per-fold mean +/- SD", notes)
    return flagged


def compute_metrics(
    cohort: Cohort, scored: Scored, metric_names: list[str], evaluation, seed: int, notes: list[str],
    audit: bool = True, context: SurvivalContext | None = None,
) -> dict[str, Any]:
    """Overall metrics with CIs and, with ``audit``, every metric per subgroup and the largest gaps."""
    task = cohort.target.kind
    y = cohort.target.take(scored.index)
    rng = np.random.default_rng(seed)
    fns: dict[str, MetricFn] = metric_functions(task, context)
    batches = batch_functions(task, context)

    def block(sel: np.ndarray) -> dict[str, Any]:
        yy = y.take(sel)
        preds = [p[sel] for p in scored.per_repeat]
        return {
            m: estimate(task, m, yy, preds, bootstrap=evaluation.bootstrap, confidence=evaluation.confidence,
                        rng=rng, fn=fns[m], batch=batches[m]).as_dict()
            for m in metric_names
        }

    result: dict[str, Any] = {"overall": block(np.arange(len(scored.index))), "n": len(scored.index),
                              "confidence": evaluation.confidence}
    if not audit:
        return result
    subgroups: dict[str, Any] = {}
    gaps: dict[str, Any] = {}
    for column, labels in cohort.subgroups.items():
        values = np.array(labels)[scored.index]
        per_value: dict[str, Any] = {}
        for value in sorted(set(values.tolist())):
            sel = np.flatnonzero(values == value)
            per_value[value] = block(sel)
            if len(sel) < evaluation.min_subgroup_size:
                warn(f"subgroup {column} = {value!r} has {len(sel)} scored patients (< {evaluation.min_subgroup_size}); "
                     "its estimates are unstable", notes)
            if cohort.target.is_classification and len(np.unique(y.values[sel])) < 2:
                warn(f"subgroup {column} = {value!r} holds a single class; AUROC-type metrics are undefined there", notes)
            if task == "survival" and not y.event[sel].any():  # type: ignore[index]
                warn(f"subgroup {column} = {value!r} has no events; survival metrics are undefined there", notes)
        subgroups[column] = per_value
        gaps[column] = {}
        for m in metric_names:
            vals = [v[m]["value"] for v in per_value.values() if v[m]["value"] is not None]
            gaps[column][m] = round(max(vals) - min(vals), 6) if len(vals) >= 2 else None
    result["subgroups"] = subgroups
    result["subgroup_gaps"] = gaps
    if task == "binary":
        result["equalized_odds"] = {c: equalized_odds(y.values, scored.mean(), np.array(l)[scored.index])
                                    for c, l in cohort.subgroups.items()}
    return result


def equalized_odds(y: np.ndarray, p: np.ndarray, groups: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Largest difference between subgroups in true- or false-positive rate at ``threshold``."""
    pred = p >= threshold
    tpr, fpr = {}, {}
    for g in sorted(set(groups.tolist())):
        sel = groups == g
        pos, neg = sel & (y == 1), sel & (y == 0)
        tpr[g] = float(pred[pos].mean()) if pos.any() else None
        fpr[g] = float(pred[neg].mean()) if neg.any() else None

    def spread(rates: dict) -> float | None:
        vals = [v for v in rates.values() if v is not None]
        return max(vals) - min(vals) if len(vals) >= 2 else None

    parts = [v for v in (spread(tpr), spread(fpr)) if v is not None]
    return {"difference": round(max(parts), 6) if parts else None, "tpr": tpr, "fpr": fpr, "threshold": threshold}


def reliability_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, list]:
    """Per probability bin: mean predicted probability, observed rate, patients."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(which, p, bins) / count
        observed = np.bincount(which, y.astype(float), bins) / count
    keep = count > 0
    return {"predicted": np.round(predicted[keep], 6).tolist(), "observed": np.round(observed[keep], 6).tolist(),
            "count": count[keep].tolist()}


def decision_curve(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray | None = None) -> dict[str, list]:
    """Net benefit of treating by the model, treating all and treating none, across thresholds.

    Net benefit = TP/n - FP/n * t / (1 - t) (Vickers and Elkin, 2006).
    """
    thresholds = np.round(np.arange(0.01, 1.0, 0.01), 2) if thresholds is None else thresholds
    n = len(y)
    prevalence = y.mean()
    model, treat_all = [], []
    for t in thresholds:
        act = p >= t
        tp = np.sum(act & (y == 1)) / n
        fp = np.sum(act & (y == 0)) / n
        w = t / (1 - t)
        model.append(round(float(tp - fp * w), 6))
        treat_all.append(round(float(prevalence - (1 - prevalence) * w), 6))
    return {"threshold": thresholds.tolist(), "model": model, "treat_all": treat_all, "treat_none": [0.0] * len(thresholds)}


def roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 200) -> dict[str, list]:
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    pick = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).astype(int))
    pick_pr = np.unique(np.linspace(0, len(recall) - 1, min(max_points, len(recall))).astype(int))
    return {"roc": {"fpr": np.round(fpr[pick], 5).tolist(), "tpr": np.round(tpr[pick], 5).tolist()},
            "pr": {"recall": np.round(recall[pick_pr], 5).tolist(), "precision": np.round(precision[pick_pr], 5).tolist()}}


def calibration_check(y: np.ndarray, p: np.ndarray, limit: float, notes: list[str], seed: int = 0,
                      advice: str | None = None) -> dict[str, Any]:
    """ECE of the pooled out-of-fold probabilities, flagged when it exceeds ``limit`` and chance.

    In small samples even perfectly calibrated probabilities have a sizeable ECE,
    so the flag also needs the ECE to exceed the 95th percentile of ECEs of
    outcomes drawn from the probabilities themselves (200 draws).
    """
    ece = expected_calibration_error(y, p)
    rng = np.random.default_rng(seed)
    def draw() -> np.ndarray:
        if p.ndim == 1:
            return (rng.random(len(p)) < p).astype(int)
        return (rng.random((len(p), 1)) > np.cumsum(p, axis=1)).sum(axis=1).clip(0, p.shape[1] - 1)

    null = [expected_calibration_error(draw(), p) for _ in range(200)]
    chance = float(np.quantile(null, 0.95))
    flagged = ece > limit and ece > chance
    if flagged:
        warn(f"predicted probabilities look poorly calibrated: expected calibration error {ece:.3f} > {limit} "
             f"(calibrated probabilities would give at most {chance:.3f} here)" + (f"; {advice}" if advice else ""),
             notes)
    return {"ece": round(ece, 6), "limit": limit, "chance_95": round(chance, 6), "flagged": bool(flagged)}


def risk_groups(y: Target, risk: np.ndarray, groups: int, thresholds: list[float] | None) -> dict[str, Any]:
    """Patients split by predicted risk (quantile groups or thresholds), Kaplan-Meier per group, log-rank test."""
    from sksurv.compare import compare_survival
    from sksurv.nonparametric import kaplan_meier_estimator
    from sksurv.util import Surv

    cuts = np.asarray(thresholds, dtype=float) if thresholds else np.quantile(risk, np.linspace(0, 1, groups + 1)[1:-1])
    label = np.digitize(risk, cuts)
    names = [f"risk group {k + 1} of {len(cuts) + 1}" for k in range(len(cuts) + 1)]
    event = y.event.astype(bool)  # type: ignore[union-attr]
    out: dict[str, Any] = {"cuts": np.round(cuts, 6).tolist(), "groups": []}
    for k, name in enumerate(names):
        sel = label == k
        if not sel.any():
            continue
        time, surv = kaplan_meier_estimator(event[sel], y.values[sel])
        out["groups"].append({"name": name, "n": int(sel.sum()), "events": int(event[sel].sum()),
                              "km_time": np.round(time, 4).tolist(), "km_survival": np.round(surv, 5).tolist()})
    if len(np.unique(label)) >= 2:
        chi2, pvalue = compare_survival(Surv.from_arrays(event, y.values), label)
        out["logrank"] = {"chi2": round(float(chi2), 6), "p_value": float(pvalue)}
    return out


def curves(cohort: Cohort, scored: Scored, evaluation, notes: list[str], advice: str | None = None) -> dict[str, Any]:
    """Everything beyond scalar metrics that the report draws, computed on pooled predictions."""
    y = cohort.target.take(scored.index)
    p = scored.mean()
    if y.kind == "binary":
        return {
            "reliability": reliability_curve(y.values, p),
            "decision_curve": decision_curve(y.values, p),
            **roc_points(y.values, p),
            "calibration": calibration_check(y.values, p, evaluation.ece_warning, notes, advice=advice),
        }
    if y.kind == "multiclass":
        return {"calibration": calibration_check(y.values, p, evaluation.ece_warning, notes, advice=advice)}
    if y.kind == "survival":
        risk = p if p.ndim == 1 else p[:, 0]
        return {"risk_groups": risk_groups(y, risk, evaluation.risk_groups, evaluation.risk_thresholds)}
    return {}


def ablation_subsets(names: list[str]) -> dict[str, tuple[str, ...]]:
    """Each modality alone, and (with three or more) all but one, labelled for reports."""
    subsets = {name: (name,) for name in names}
    if len(names) >= 3:
        subsets.update({f"all but {name}": tuple(n for n in names if n != name) for name in names})
    return subsets


def ablation_metrics(cohort: Cohort, full: Scored, parts: dict[str, tuple[tuple[str, ...], Scored]],
                     metric_names: list[str], evaluation, seed: int, context: SurvivalContext | None = None) -> dict[str, Any]:
    """Each subset's metrics and the full model's gain over it (paired bootstrap over the same patients).

    ``gain`` is full minus subset, oriented so that a positive gain always
    means the full model is better (for lower-is-better metrics it is
    subset minus full).
    """
    task = cohort.target.kind
    fns = metric_functions(task, context)
    batches = batch_functions(task, context)
    y = cohort.target.take(full.index)
    subsets: dict[str, Any] = {}
    for label, (modalities, scored) in parts.items():
        entry: dict[str, Any] = {"modalities": list(modalities), "metrics": {}, "gain": {}}
        for m in metric_names:
            rng = np.random.default_rng([seed, 404])  # the same resamples for every subset and metric
            entry["metrics"][m] = estimate(task, m, y, scored.per_repeat, bootstrap=evaluation.bootstrap,
                                           confidence=evaluation.confidence, rng=rng, fn=fns[m],
                                           batch=batches[m]).as_dict()
            better, worse = ((full.per_repeat, scored.per_repeat) if GREATER_IS_BETTER.get(m, True)
                             else (scored.per_repeat, full.per_repeat))
            rng = np.random.default_rng([seed, 404])
            entry["gain"][m] = paired_difference(task, m, y, better, worse, bootstrap=evaluation.bootstrap,
                                                 confidence=evaluation.confidence, rng=rng, fn=fns[m],
                                                 batch=batches[m]).as_dict()
        subsets[label] = entry
    primary = metric_names[0]
    singles = [label for label, (mods, _) in parts.items() if len(mods) == 1]
    sign = 1 if GREATER_IS_BETTER.get(primary, True) else -1
    best = max(singles, key=lambda label: sign * (subsets[label]["metrics"][primary]["value"] or -np.inf)) if singles else None
    return {"primary_metric": primary, "subsets": subsets, "best_single": best,
            "gain_over_best_single": subsets[best]["gain"] if best else None}
