"""Train-only preprocessing of one omics layer: log1p, feature selection, imputation, scaling.

Everything learned here (which features, fill values, means, SDs) comes from
the training patients' rows only; ``apply`` uses it on any patients.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from tumorboard.api import DataError, Target, apply_numeric, fit_numeric

from .layers import Layer, LayerSpec


def cox_scores(x: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Univariate Cox score-test statistics (U^2 / I) for every column at once, O(n p).

    Risk sets come from cumulative sums over patients sorted by decreasing
    time; tied times share the risk set of their whole tie group.
    """
    order = np.argsort(-time, kind="stable")
    xs, ts, es = x[order], time[order], event[order].astype(bool)
    s0 = np.arange(1, len(ts) + 1, dtype=np.float64)
    s1, s2 = np.cumsum(xs, axis=0), np.cumsum(xs * xs, axis=0)
    # the risk set of a time is everyone up to the last patient with that same time
    last_of_tie = np.searchsorted(-ts, -ts, side="right") - 1
    s0, s1, s2 = s0[last_of_tie], s1[last_of_tie], s2[last_of_tie]
    mean = s1 / s0[:, None]
    u = ((xs - mean) * es[:, None]).sum(axis=0)
    info = ((s2 / s0[:, None] - mean**2) * es[:, None]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(info > 1e-12, u * u / info, 0.0)


def supervised_scores(x: np.ndarray, y: Target) -> np.ndarray:
    """How strongly each column is associated with the target on these (training) rows."""
    from sklearn.feature_selection import f_classif, f_regression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant columns score NaN -> 0 below
        if y.kind == "survival":
            scores = cox_scores(x, np.asarray(y.values, float), np.asarray(y.event))
        elif y.kind == "regression":
            scores = f_regression(x, np.asarray(y.values, float))[0]
        else:
            scores = f_classif(x, np.asarray(y.values))[0]
    return np.nan_to_num(scores, nan=0.0)


def fit_layer(layer: Layer, rows: np.ndarray, y: Target, spec: LayerSpec,
              select: Literal["variance", "supervised"]) -> dict[str, np.ndarray]:
    """What one layer learns from its training rows (``rows`` index the layer's matrix; ``y`` is theirs)."""
    x = layer.matrix[rows]
    if spec.log1p:
        x = _log1p(x, layer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
        variance = np.nan_to_num(np.nanvar(x, axis=0), nan=0.0)
    varying = np.flatnonzero(variance > 1e-12)
    if len(varying) == 0:
        raise DataError(
            f"{layer.path}: every feature of layer {layer.name!r} is constant across the {len(rows)} training "
            "patients, so nothing is left after filtering; check the file (or drop the layer)")
    if select == "supervised":
        filled = np.where(np.isnan(x[:, varying]), np.nanmedian(x[:, varying], axis=0), x[:, varying])
        score = supervised_scores(filled, y)
    else:
        score = variance[varying]
    k = len(varying) if spec.top_k is None else min(spec.top_k, len(varying))
    # stable ranking: ties keep file order, so a refit on the same patients keeps the same features
    keep = np.sort(varying[np.argsort(-score, kind="stable")[:k]])
    stats = fit_numeric(x[:, keep], impute="median", scale=spec.scale)
    return {"columns": keep, "fill": stats.fill, "mean": stats.mean, "scale": stats.scale,
            "low": stats.low, "high": stats.high}


def apply_layer(layer: Layer, rows: np.ndarray, state: dict[str, np.ndarray], spec: LayerSpec) -> tuple[np.ndarray, np.ndarray]:
    """(values, observed) for ``rows`` of the layer: preprocessed values and which cells were measured."""
    x = layer.matrix[rows][:, state["columns"]]
    if spec.log1p:
        x = _log1p(x, layer)
    observed = ~np.isnan(x)
    return apply_numeric(x, state["low"], state["high"], state["fill"], state["mean"], state["scale"]), observed


def _log1p(x: np.ndarray, layer: Layer) -> np.ndarray:
    if np.nanmin(x, initial=0.0) <= -1:
        raise DataError(f"{layer.path}: layer {layer.name!r} has values <= -1, so log1p is undefined; "
                        "set log1p = false for this layer (it is already on a log scale?)")
    return np.log1p(x)
