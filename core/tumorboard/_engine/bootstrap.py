"""Bootstrap replicates of every metric, many at a time.

A replicate that draws patient i k times is the same sample as one that
weights patient i by k, so a batch of B replicates is a (B, n) matrix of
counts, and each metric is written once as weighted sums over that matrix:
one pass of numpy per batch instead of one Python call per replicate (the
per-replicate loop took 787 s of a 7,874-patient survival run).

The counts are drawn from the run's generator exactly as the per-replicate
loop drew its indices (one ``rng.integers(0, n, n)`` per replicate, in
order), so the replicates are the loop's replicates. Counts are integers:
the sums that decide ranks, pairs and confusion counts are exact, and the
values equal the loop's to the last bit or, where a float sum is taken in
another order, to within rounding (tests compare both on fixed seeds for
every metric).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np

from .data import Target

BatchFn = Callable[[Target, np.ndarray, np.ndarray], np.ndarray]
"""(y, prediction, W) -> one value per row of the (B, n) count matrix W."""

# at most this many cells in a chunk of replicates (32 MB of float64): large cohorts take
# their replicates in several chunks rather than one matrix of B x n
CHUNK_CELLS = 4_000_000


def resampling_weights(rng: np.random.Generator, n: int, count: int) -> Iterator[np.ndarray]:
    """``count`` bootstrap replicates of ``n`` patients as chunks of (B, n) float64 counts.

    Draws ``rng.integers(0, n, n)`` once per replicate, in order: the same
    stream, and so the same samples, as a loop that resamples indices.
    """
    chunk = max(1, min(count, CHUNK_CELLS // max(n, 1)))
    done = 0
    while done < count:
        b = min(chunk, count - done)
        idx = np.stack([rng.integers(0, n, n) for _ in range(b)])
        idx += (np.arange(b) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


# below this many patient-replicate cells a bootstrap stays in this process: a worker's start and
# the task's transfer cost more than the batched arithmetic (about 20 ns a cell)
PARALLEL_CELLS = 50_000_000


def all_replicates(replicates: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator, n: int,
                   count: int) -> np.ndarray:
    """``replicates(W)`` over every chunk of ``count`` resamples, in order, on the run's workers when
    the bootstrap is large enough to gain from them.

    The parent draws the resamples in order (one generator, the loop's stream),
    noting the generator's state where each part begins; a worker restores that
    state, draws its part again and computes it. The values are the same bytes
    as in one process.
    """
    from .execution import current_executor

    executor = current_executor()
    if executor is None or executor.workers == 1 or n * count < PARALLEL_CELLS:
        return np.concatenate([replicates(W) for W in resampling_weights(rng, n, count)])
    parts = np.array_split(np.arange(count), 2 * executor.workers)
    tasks = []
    for part in parts:
        if len(part) == 0:
            continue
        tasks.append((replicates, type(rng.bit_generator), rng.bit_generator.state, n, len(part)))
        for _ in range(len(part)):  # advance exactly as the part's worker will draw
            rng.integers(0, n, n)
    return np.concatenate(list(executor.map(_replicate_part, tasks)))


def _replicate_part(replicates: Callable[[np.ndarray], np.ndarray], bit_generator: type, state: dict, n: int,
                    count: int) -> np.ndarray:
    """One part of a bootstrap on a worker: the parent's generator state, its draws, their values."""
    rng = np.random.Generator(bit_generator())
    rng.bit_generator.state = state
    return np.concatenate([replicates(W) for W in resampling_weights(rng, n, count)])


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, nan where b is 0 (a metric undefined on that replicate)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(a, dtype=np.float64) / b
    return np.where(b == 0, np.nan, out)


def predicted_labels(p: np.ndarray) -> np.ndarray:
    """Class labels of probabilities: threshold 0.5 for binary, the largest for multiclass."""
    return (p >= 0.5).astype(np.int64) if p.ndim == 1 else np.argmax(p, axis=1)


def _total(W: np.ndarray) -> np.ndarray:
    return W.sum(axis=1)


def _weighted_mean(W: np.ndarray, per_patient: np.ndarray) -> np.ndarray:
    return (W @ per_patient) / _total(W)


# --- classification ------------------------------------------------------------------------------

def _confusion(y: np.ndarray, pred: np.ndarray, W: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: true positives, true count, predicted count (each (B, k)); integer-valued."""
    cls = np.arange(k)
    true = (y[:, None] == cls).astype(np.float64)
    predicted = (pred[:, None] == cls).astype(np.float64)
    return W @ (true * predicted), W @ true, W @ predicted


def _binary_counts(y: np.ndarray, p: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, ...]:
    tp, true, predicted = _confusion(y, predicted_labels(p), W, 2)
    n = _total(W)
    tp1, fp1, fn1 = tp[:, 1], predicted[:, 1] - tp[:, 1], true[:, 1] - tp[:, 1]
    tn1 = n - tp1 - fp1 - fn1
    return tp1, tn1, fp1, fn1


def _f1_average(y: np.ndarray, p: np.ndarray, W: np.ndarray, k: int, average: str) -> np.ndarray:
    """scikit-learn's f1_score(average=...) over the labels present in truth or prediction."""
    tp, true, predicted = _confusion(y, predicted_labels(p), W, k)
    denom = true + predicted
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(denom > 0, 2 * tp / denom, 0.0)
    if average == "macro":
        present = denom > 0
        return np.sum(f * present, axis=1) / present.sum(axis=1)
    support = true.sum(axis=1)
    return np.where(support > 0, _divide(np.sum(f * true, axis=1), support), 0.0)


def _sorted_groups(values: np.ndarray, descending: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts ``values`` and the start of each run of equal values in it."""
    order = np.argsort(-values if descending else values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return order, starts


def _group_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Column sums over each run of tied columns (``values`` already in sorted order); without ties,
    the columns themselves (scores from a model rarely tie, and reduceat costs more than the rest)."""
    if len(starts) == values.shape[1]:
        return values
    return np.add.reduceat(values, starts, axis=1)


def _mann_whitney(pos: np.ndarray, neg: np.ndarray, score: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weighted P(score_pos > score_neg) + 1/2 P(tie): the area under the ROC curve per replicate."""
    order, starts = _sorted_groups(score)
    Wo = W[:, order]
    pos_g = _group_sums(Wo * pos[order], starts)
    neg_g = _group_sums(Wo * neg[order], starts)
    below = np.cumsum(neg_g, axis=1) - neg_g
    numerator = np.sum(pos_g * (below + 0.5 * neg_g), axis=1)
    return _divide(numerator, pos_g.sum(axis=1) * neg_g.sum(axis=1))


def _auroc(y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    return _mann_whitney(y.values == 1, y.values == 0, p, W)


def _average_precision(y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    order, starts = _sorted_groups(p, descending=True)
    Wo = W[:, order]
    count_g = _group_sums(Wo, starts)
    pos_g = _group_sums(Wo * (y.values[order] == 1), starts)
    tps, seen = np.cumsum(pos_g, axis=1), np.cumsum(count_g, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tps / seen
        recall = tps / tps[:, -1:]
        step = np.diff(recall, axis=1, prepend=0.0) * precision
    # a threshold absent from a replicate is no threshold there
    ap = np.sum(np.where(count_g > 0, step, 0.0), axis=1)
    return np.where(tps[:, -1] > 0, ap, np.nan)


def _ece(y: np.ndarray, p: np.ndarray, W: np.ndarray, bins: int = 10) -> np.ndarray:
    if p.ndim == 2:
        conf = p.max(axis=1)
        hit = (np.argmax(p, axis=1) == y).astype(float)
    else:
        conf, hit = p, y.astype(float)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    onehot = (which[:, None] == np.arange(bins)).astype(np.float64)
    gap = np.abs(W @ (onehot * hit[:, None]) - W @ (onehot * conf[:, None]))
    return gap.sum(axis=1) / _total(W)


def binary_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each patient's log loss of a positive-class probability (clipped away from 0 and 1)."""
    c = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y * np.log(c) + (1 - y) * np.log(1 - c))


def _ratio_of(numerator: int, denominator: tuple[int, ...]) -> BatchFn:
    """A confusion ratio: counts[numerator] / sum(counts[i] for i in denominator) (tp, tn, fp, fn)."""
    def fn(y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
        c = _binary_counts(y.values, p, W)
        return _divide(c[numerator], sum(c[i] for i in denominator))
    return fn


def _balanced_binary(y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    tp, tn, fp, fn = _binary_counts(y.values, p, W)
    return 0.5 * (_divide(tp, tp + fn) + _divide(tn, tn + fp))


def _f1_binary(y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    tp, _, fp, fn = _binary_counts(y.values, p, W)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, _divide(2 * tp, denom), 0.0)


BINARY: dict[str, BatchFn] = {
    "auroc": _auroc,
    "auprc": _average_precision,
    "accuracy": lambda y, p, W: _weighted_mean(W, (predicted_labels(p) == y.values).astype(np.float64)),
    "balanced_accuracy": _balanced_binary,
    "sensitivity": _ratio_of(0, (0, 3)),
    "specificity": _ratio_of(1, (1, 2)),
    "precision": _ratio_of(0, (0, 2)),
    "f1": _f1_binary,
    "f1_macro": lambda y, p, W: _f1_average(y.values, p, W, 2, "macro"),
    "f1_weighted": lambda y, p, W: _f1_average(y.values, p, W, 2, "weighted"),
    "brier": lambda y, p, W: _weighted_mean(W, (p - y.values) ** 2),
    "log_loss": lambda y, p, W: _weighted_mean(W, binary_log_loss(y.values, p)),
    "ece": lambda y, p, W: _ece(y.values, p, W),
}


def _multiclass_auroc(y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    """One-vs-rest macro AUROC; undefined (nan) on a replicate that lacks a class, as scikit-learn's."""
    if not np.allclose(1, p.sum(axis=1)):  # scikit-learn refuses scores that are not probabilities
        return np.full(len(W), np.nan)
    per_class = [_mann_whitney(y.values == k, y.values != k, p[:, k], W) for k in range(p.shape[1])]
    return np.mean(per_class, axis=0)


def _balanced_multiclass(y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    tp, true, _ = _confusion(y.values, predicted_labels(p), W, p.shape[1])
    present = true > 0
    recall = np.where(present, tp / np.where(present, true, 1.0), 0.0)
    return recall.sum(axis=1) / present.sum(axis=1)


def _multiclass_log_loss(y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    eps = np.finfo(np.float64).eps
    loss = -np.log(np.clip(p.astype(np.float64), eps, 1 - eps)[np.arange(len(p)), y.values])
    return _weighted_mean(W, loss)


MULTICLASS: dict[str, BatchFn] = {
    "accuracy": BINARY["accuracy"],
    "balanced_accuracy": _balanced_multiclass,
    "auroc": _multiclass_auroc,
    "f1_macro": lambda y, p, W: _f1_average(y.values, p, W, p.shape[1], "macro"),
    "f1_weighted": lambda y, p, W: _f1_average(y.values, p, W, p.shape[1], "weighted"),
    "log_loss": _multiclass_log_loss,
    "brier": lambda y, p, W: _weighted_mean(W, np.sum((p - np.eye(p.shape[1])[y.values]) ** 2, axis=1)),
    "ece": lambda y, p, W: _ece(y.values, p, W),
}


def _r2(y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    """scikit-learn's r2_score (force_finite): 1 for a perfect fit of a constant, else 0 when undefined."""
    total = _total(W)
    mean = (W @ y.values) / total
    ss_res = W @ (y.values - p) ** 2
    ss_tot = np.sum(W * (y.values[None, :] - mean[:, None]) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1 - ss_res / ss_tot
    return np.where(ss_tot != 0, r2, np.where(ss_res == 0, 1.0, 0.0))


REGRESSION: dict[str, BatchFn] = {
    "mae": lambda y, p, W: _weighted_mean(W, np.abs(y.values - p)),
    "rmse": lambda y, p, W: np.sqrt(_weighted_mean(W, (y.values - p) ** 2)),
    "r2": _r2,
}


# --- survival ------------------------------------------------------------------------------------

def weighted_concordance(time: np.ndarray, event: np.ndarray, risk: np.ndarray, W: np.ndarray,
                         weight: np.ndarray | None = None, tied_tol: float = 0.0) -> np.ndarray:
    """Concordance of ``risk`` with survival for each row of patient counts ``W``, in O(n log^2 n).

    A pair (i, j) is comparable when i had an event before j's time, or at j's
    censoring time; it counts 1 when r_i > r_j + tol, 1/2 when |r_i - r_j| <= tol.
    Pairs are weighted by W_i W_j and each event i by ``weight[i]`` (Harrell's C:
    none; Uno's C: the squared inverse probability of censoring).

    Patients are put in a sequence, latest time first and, at one time, censored
    before events; an event is compared with everyone before its time group's
    first event. Those counts by risk rank are 2-D prefix counts, taken level by
    level over the dyadic blocks of the sequence with sorted keys and cumulative
    sums: whole-array numpy per level, no Python loop over patients.
    """
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event).astype(bool)
    risk = np.asarray(risk, dtype=np.float64)
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    n = len(time)
    a = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    levels = np.unique(risk)
    width = len(levels) + 1
    rank = np.searchsorted(levels, risk)
    lower = np.searchsorted(levels, risk - tied_tol, side="left")   # ranks strictly below r_i - tol
    upper = np.searchsorted(levels, risk + tied_tol, side="right")  # ranks up to r_i + tol

    order = np.lexsort((event, -time))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    new_time = np.r_[True, time[order][1:] != time[order][:-1]]
    starts = np.flatnonzero(new_time)
    first_event = starts + np.add.reduceat(~event[order], starts)  # censored come first in a time group
    query = first_event[np.cumsum(new_time) - 1][position]         # per patient: where its comparisons end

    scored = np.flatnonzero(event & (a != 0))
    q, lo, hi = query[scored], lower[scored], upper[scored]
    plan = []
    for level in range(max(n, 1).bit_length()):
        left = np.flatnonzero(((position >> level) & 1) == 0)
        keys = (position[left] >> (level + 1)) * width + rank[left]
        by_key = np.argsort(keys, kind="stable")
        keys = keys[by_key]
        ask = np.flatnonzero(((q >> level) & 1) == 1)
        base = (q[ask] >> (level + 1)) * width
        plan.append((left[by_key], ask, np.searchsorted(keys, base), np.searchsorted(keys, base + lo[ask]),
                     np.searchsorted(keys, base + hi[ask])))

    rows = max(1, min(len(W), CHUNK_CELLS // max(n, 1)))
    result = np.empty(len(W))
    for start in range(0, len(W), rows):
        Wc = W[start:start + rows]
        below = np.zeros((len(Wc), len(scored)))
        upto = np.zeros((len(Wc), len(scored)))
        for members, ask, p0, plo, phi in plan:
            cum = np.zeros((len(Wc), len(members) + 1))
            np.cumsum(Wc[:, members], axis=1, out=cum[:, 1:])
            below[:, ask] += cum[:, plo] - cum[:, p0]
            upto[:, ask] += cum[:, phi] - cum[:, p0]
        seen = np.zeros((len(Wc), n + 1))
        np.cumsum(Wc[:, order], axis=1, out=seen[:, 1:])
        scale = a[scored] * Wc[:, scored]
        numerator = np.sum(scale * (below + 0.5 * (upto - below)), axis=1)
        denominator = np.sum(scale * seen[:, q], axis=1)
        result[start:start + rows] = _divide(numerator, denominator)
    return result


def risk_scores(p: np.ndarray) -> np.ndarray:
    """Survival predictions are a risk score (n,), or (n, 1 + T): risk, then S(t) on the time grid."""
    return p if p.ndim == 1 else p[:, 0]


def _harrell(y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    return weighted_concordance(y.values, y.event, risk_scores(p), W)  # type: ignore[arg-type]


def _censoring(ctx) -> object:
    from sksurv.nonparametric import CensoringDistributionEstimator
    from sksurv.util import Surv

    ref = ctx.reference
    return CensoringDistributionEstimator().fit(
        Surv.from_arrays(event=ref.event.astype(bool), time=ref.values.astype(np.float64)))


def _ipcw(ctx, y: Target, W: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """1 / G(t_i) for events (0 for censored patients and outside ``mask``), as scikit-survival's
    predict_ipcw; and, per replicate, whether a drawn event has G = 0 (scikit-survival refuses it)."""
    event = y.event.astype(bool)  # type: ignore[union-attr]
    keep = event if mask is None else event & mask
    G = _censoring(ctx).predict_proba(y.values[keep].astype(np.float64))
    weights = np.zeros(len(y))
    with np.errstate(divide="ignore"):
        weights[keep] = 1.0 / G
    bad = np.zeros(len(y))
    bad[np.flatnonzero(keep)[G == 0.0]] = 1.0
    return weights, (W @ bad) > 0


def _finite(p: np.ndarray, W: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(p)))


def _uno(ctx, y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    risk = risk_scores(p)
    if not _finite(risk, W):
        return np.full(len(W), np.nan)
    tau = max(ctx.horizons) if ctx.horizons else None
    mask = None if tau is None else y.values < tau
    ipcw, refused = _ipcw(ctx, y, W, mask)
    c = weighted_concordance(y.values, y.event, risk, W, weight=np.square(ipcw), tied_tol=1e-8)  # type: ignore[arg-type]
    return np.where(refused, np.nan, c)


def _present_range(y: Target, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each replicate's earliest and latest time."""
    present = W > 0
    return (np.where(present, y.values, np.inf).min(axis=1), np.where(present, y.values, -np.inf).max(axis=1))


def _weighted_km(y: Target, W: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Kaplan-Meier S(t) of each replicate at times ``at`` (scikit-survival's estimator, counts as weights)."""
    order, starts = _sorted_groups(y.values)
    unique = y.values[order][starts]
    Wo = W[:, order]
    events = _group_sums(Wo * y.event[order], starts)  # type: ignore[index]
    leaving = _group_sums(Wo, starts)
    at_risk = np.cumsum(leaving[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(events != 0, events / at_risk, 0.0)
    prob = np.cumprod(1.0 - ratio, axis=1)
    idx = np.searchsorted(unique, at, side="right") - 1
    return np.where(idx >= 0, prob[:, np.maximum(idx, 0)], 1.0)


def _td_auc(ctx, y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    """scikit-survival's cumulative_dynamic_auc mean over the horizons inside each replicate's follow-up."""
    risk = risk_scores(p)
    out = np.full(len(W), np.nan)
    if not _finite(risk, W):
        return out
    horizons = np.unique(np.asarray(ctx.horizons, dtype=np.float64))
    if len(horizons) == 0:
        return out
    ipcw, refused = _ipcw(ctx, y, W)
    event = y.event.astype(bool)  # type: ignore[union-attr]
    # ties in risk as scikit-survival groups them: consecutive sorted scores within 1e-8
    order = np.argsort(-risk, kind="mergesort")
    chained = np.r_[False, np.abs(np.diff(risk[order])) <= 1e-8]
    group = np.empty(len(risk), dtype=np.int64)
    group[order] = np.cumsum(~chained) - 1
    tie_score = -group.astype(np.float64)  # higher risk, higher score; chained ties share one
    scores = np.stack([
        _ipcw_auc(W, (y.values <= t) & event, y.values > t, ipcw, tie_score) for t in horizons
    ], axis=1)  # (B, T)
    low, high = _present_range(y, W)
    valid = (horizons[None, :] >= low[:, None]) & (horizons[None, :] < high[:, None])
    survival = _weighted_km(y, W, horizons)
    for pattern in {tuple(v) for v in valid}:
        sel = np.all(valid == np.array(pattern), axis=1)
        cols = np.flatnonzero(pattern)
        if len(cols) == 0:
            continue
        if len(cols) == 1:
            out[sel] = scores[sel][:, cols[0]]
            continue
        s = survival[sel][:, cols]
        d = -np.diff(np.concatenate([np.ones((len(s), 1)), s], axis=1), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[sel] = (scores[sel][:, cols] * d).sum(axis=1) / (1.0 - s[:, -1])
    return np.where(refused, np.nan, out)


def _ipcw_auc(W: np.ndarray, case: np.ndarray, control: np.ndarray, ipcw: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Cases weighted by their IPCW against unweighted controls: the time-dependent AUC at one horizon."""
    order, starts = _sorted_groups(score)
    Wo = W[:, order]
    case_g = _group_sums(Wo * (case * ipcw)[order], starts)
    control_g = _group_sums(Wo * control[order], starts)
    below = np.cumsum(control_g, axis=1) - control_g
    numerator = np.sum(case_g * (below + 0.5 * control_g), axis=1)
    return _divide(numerator, case_g.sum(axis=1) * control_g.sum(axis=1))


def _ibs(ctx, y: Target, p: np.ndarray, W: np.ndarray) -> np.ndarray:
    """scikit-survival's integrated_brier_score over the grid inside each replicate's follow-up."""
    out = np.full(len(W), np.nan)
    if p.ndim == 1:
        return out  # the model gives no survival curves
    grid = np.asarray(ctx.times, dtype=np.float64)
    curves = p[:, 1:]
    if not np.all(np.isfinite(curves)):
        return out
    cens = _censoring(ctx)
    event = y.event.astype(bool)  # type: ignore[union-attr]
    g_t = cens.predict_proba(grid)
    g_t[g_t == 0] = np.inf
    g_y = cens.predict_proba(y.values.astype(np.float64))
    g_y[g_y == 0] = np.inf
    case = (y.values[:, None] <= grid[None, :]) & event[:, None]
    control = y.values[:, None] > grid[None, :]
    contribution = np.square(curves) * case / g_y[:, None] + np.square(1.0 - curves) * control / g_t[None, :]
    brier = (W @ contribution) / _total(W)[:, None]  # (B, T)
    low, high = _present_range(y, W)
    valid = (grid[None, :] >= low[:, None]) & (grid[None, :] < high[:, None])
    has_event = (W @ event.astype(np.float64)) > 0  # scikit-survival refuses an all-censored sample
    for pattern in {tuple(v) for v in valid}:
        cols = np.flatnonzero(pattern)
        times = grid[cols]
        if len(cols) < 2 or len(np.unique(times)) != len(times):
            continue  # fewer than two times, or a repeated time scikit-survival would refuse
        sel = np.all(valid == np.array(pattern), axis=1)
        out[sel] = np.trapezoid(brier[sel][:, cols], times, axis=1) / (times[-1] - times[0])
    return np.where(has_event, out, np.nan)


SURVIVAL: dict[str, BatchFn] = {
    "c_index": _harrell,
    "uno_c": _uno,  # type: ignore[dict-item]
    "td_auc": _td_auc,  # type: ignore[dict-item]
    "ibs": _ibs,  # type: ignore[dict-item]
}
NEEDS_CONTEXT = {"uno_c", "td_auc", "ibs"}

BATCHES: dict[str, dict[str, BatchFn]] = {
    "binary": BINARY, "multiclass": MULTICLASS, "regression": REGRESSION, "survival": SURVIVAL,
}


def bind_context(functions: dict[str, Callable], task: str, context) -> dict[str, Callable]:
    """A task's metric functions with the survival ones that need the run's context bound to it
    (dropped without one); shared by the one-sample and the batched tables."""
    fns = dict(functions)
    if task == "survival":
        for name in NEEDS_CONTEXT:
            if context is None:
                fns.pop(name)
            else:
                fns[name] = partial(functions[name], context)
    return fns


def batch_functions(task: str, context=None) -> dict[str, BatchFn]:
    """The batched metric functions of a task, survival ones bound to the run's context."""
    return bind_context(BATCHES[task], task, context)


def replicate_values(batch: BatchFn, y: Target, predictions: list[np.ndarray], W: np.ndarray) -> np.ndarray:
    """Each replicate's metric averaged over the repeats' predictions (nan-mean, as the loop did)."""
    values = []
    for p in predictions:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                values.append(np.asarray(batch(y, np.asarray(p), W), dtype=np.float64))
            except ValueError:
                values.append(np.full(len(W), np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(values), axis=0)
