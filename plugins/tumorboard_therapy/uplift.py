"""How good are predicted treatment effects? Qini and uplift curves, policy value, benefit calibration.

All on out-of-fold predictions for test patients, with bootstrap CIs over patients.
"""

from __future__ import annotations

import numpy as np


def best_arm(predicted: np.ndarray, reference: int = 0) -> np.ndarray:
    """The arm with the largest prediction (outcome or effect) per patient; ties go to the reference arm."""
    return np.argmax(predicted - 1e-12 * (np.arange(predicted.shape[1]) != reference), axis=1)


def _cumulative(y: np.ndarray, treated: np.ndarray, score: np.ndarray):
    """Patients ranked by ``score`` (best first): running counts of treated, controls and their responders."""
    order = np.argsort(-score, kind="mergesort")
    y, t = y[order].astype(float), treated[order].astype(bool)
    return np.cumsum(t), np.cumsum(~t), np.cumsum(y * t), np.cumsum(y * ~t)


def _qini(n_t, n_c, y_t, y_c) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_c > 0, y_t - y_c * n_t / n_c, y_t)


def _uplift(n_t, n_c, y_t, y_c) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_t > 0) & (n_c > 0), y_t / n_t - y_c / n_c, 0.0)


def qini_curve(y: np.ndarray, treated: np.ndarray, score: np.ndarray, points: int = 21) -> dict[str, list]:
    """Radcliffe's Qini curve: incremental responders when treating the top fraction by ``score``."""
    counts = _cumulative(y, treated, score)
    qini, uplift = _qini(*counts), _uplift(*counts)
    idx = np.unique(np.linspace(0, len(y) - 1, points).astype(int))
    return {"fraction": ((idx + 1) / len(y)).round(4).tolist(), "qini": qini[idx].round(4).tolist(),
            "uplift": uplift[idx].round(5).tolist()}


def qini_coefficient(y: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    """Mean gap between the Qini curve and the random-targeting line, per patient (0 = no better than random)."""
    counts = _cumulative(y, treated, score)
    if counts[0][-1] == 0 or counts[1][-1] == 0:
        return float("nan")
    qini = _qini(*counts)
    random = qini[-1] * np.arange(1, len(y) + 1) / len(y)
    return float(np.mean(qini - random) / len(y))


def auuc(y: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    """Area between the cumulative-gain curve (uplift in the top fraction x fraction) and random."""
    counts = _cumulative(y, treated, score)
    if counts[0][-1] == 0 or counts[1][-1] == 0:
        return float("nan")
    uplift = _uplift(*counts)
    fraction = np.arange(1, len(y) + 1) / len(y)
    return float(np.mean(uplift * fraction - uplift[-1] * fraction))


def policy_value(y: np.ndarray, arm: np.ndarray, policy: np.ndarray, propensity: np.ndarray) -> float:
    """Self-normalised inverse-propensity estimate of the mean outcome if everyone got ``policy``."""
    followed = arm == policy
    w = followed / np.clip(propensity[np.arange(len(arm)), policy], 0.01, 1)
    return float(np.sum(w * y) / np.sum(w)) if w.sum() > 0 else float("nan")


def ipw_effect(y: np.ndarray, arm: np.ndarray, k: int, r: int, propensity: np.ndarray) -> float:
    """Observed effect of arm k against r in a group: IPW-weighted difference of mean outcomes."""
    wk = (arm == k) / np.clip(propensity[:, k], 0.01, 1)
    wr = (arm == r) / np.clip(propensity[:, r], 0.01, 1)
    if wk.sum() == 0 or wr.sum() == 0:
        return float("nan")
    return float(np.sum(wk * y) / wk.sum() - np.sum(wr * y) / wr.sum())


def _ci(values: list[float], confidence: float) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)])
    if len(v) < 10:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(v, [alpha, 1 - alpha])
    return float(low), float(high)


def _est(value: float, replicates: list[float], confidence: float) -> dict[str, float | None]:
    low, high = _ci(replicates, confidence)

    def clean(x: float) -> float | None:
        return None if not np.isfinite(x) else round(float(x), 6)

    return {"value": clean(value), "ci_low": clean(low), "ci_high": clean(high)}


def evaluate(
    y: np.ndarray, arm: np.ndarray, predicted: np.ndarray, propensity: np.ndarray, arms: list[str], reference: int,
    *, bootstrap: int, confidence: float, seed: int, quantiles: int = 5,
) -> dict:
    """Every therapy metric for one set of out-of-fold predictions, with bootstrap CIs."""
    rng = np.random.default_rng(seed)
    n = len(y)
    policy = best_arm(predicted, reference)
    # ``predicted`` may be outcomes or effects against the reference: only differences are used
    samples = [rng.integers(0, n, n) for _ in range(bootstrap)]
    out: dict = {"arms": arms, "reference": arms[reference], "n": int(n), "candidates": {}}

    def stat(fn) -> dict:
        return _est(fn(np.arange(n)), [fn(s) for s in samples], confidence)

    out["value_recommended"] = stat(lambda s: policy_value(y[s], arm[s], policy[s], propensity[s]))
    for k, name in enumerate(arms):
        everyone = np.full(n, k)
        out[f"value_all_{name}"] = stat(lambda s, e=everyone: policy_value(y[s], arm[s], e[s], propensity[s]))
    out["recommended_share"] = {name: round(float(np.mean(policy == k)), 4) for k, name in enumerate(arms)}
    for k, name in enumerate(arms):
        if k == reference:
            continue
        pair = np.flatnonzero((arm == k) | (arm == reference))
        yy, tt, effect = y[pair], arm[pair] == k, predicted[pair, k] - predicted[pair, reference]
        pair_samples = [rng.integers(0, len(pair), len(pair)) for _ in range(bootstrap)]

        def pair_stat(fn) -> dict:
            return _est(fn(np.arange(len(pair))), [fn(s) for s in pair_samples], confidence)

        block = {
            "qini": pair_stat(lambda s: qini_coefficient(yy[s], tt[s], effect[s])),
            "auuc": pair_stat(lambda s: auuc(yy[s], tt[s], effect[s])),
            "qini_curve": qini_curve(yy, tt, effect),
        }
        # calibration of benefit: predicted vs observed effect by quantile of predicted effect
        cuts = np.quantile(effect, np.linspace(0, 1, quantiles + 1)[1:-1])
        group = np.digitize(effect, cuts)
        rows = []
        for g in range(quantiles):
            sel = np.flatnonzero(group == g)
            if len(sel) == 0:
                continue
            observed = ipw_effect(yy[sel], arm[pair][sel], k, reference, propensity[pair][sel])
            reps = []
            for _ in range(min(bootstrap, 300)):
                b = sel[rng.integers(0, len(sel), len(sel))]
                reps.append(ipw_effect(yy[b], arm[pair][b], k, reference, propensity[pair][b]))
            rows.append({"quantile": g + 1, "n": int(len(sel)), "predicted": round(float(effect[sel].mean()), 6),
                         "observed": _est(observed, reps, confidence)})
        block["benefit_calibration"] = rows
        out["candidates"][name] = block
    return out
