"""Probability calibration for any binary model, handled by the engine (``[model] calibration``).

The model is cross-fitted on the training patients' fused features (inner
stratified folds): each inner fold's model predicts the patients it did not
see, and a calibrator (isotonic regression, or Platt's sigmoid on the
log-odds) is fitted on those out-of-fold probabilities. The model itself is
fitted on all training patients, as without calibration, and its predictions
pass through the calibrator. Nothing of a test fold is used: the engine calls
this inside each outer fold's fit. The fitted calibrator is plain numbers,
saved in the pipeline's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .components import Model
from .data import FeatureBlock, Target
from .errors import RunError

Method = Literal["isotonic", "sigmoid"]


@dataclass(frozen=True)
class Calibration:
    """How to calibrate: the method and the number of inner folds."""

    method: Method
    folds: int = 3


def cross_fitted(model: Model, X: FeatureBlock, y: Target, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold probabilities of ``model`` over the training patients (one clone per inner fold)."""
    from sklearn.model_selection import StratifiedKFold

    out = np.empty(len(y))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(y)), y.values):
        inner = model.clone()
        inner.fit(X.take(train), y.take(train))
        out[test] = np.asarray(inner.predict(X.take(test)), dtype=np.float64)
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(q / (1 - q))


def fit_calibrator(method: Method, p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The calibrator of ``method`` on probabilities ``p`` with outcomes ``y``, as plain numbers."""
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    from sklearn.linear_model import LogisticRegression

    # Platt scaling on the log-odds, unpenalised: two numbers, a slope and an intercept
    fit = LogisticRegression(C=np.inf).fit(_logit(p)[:, None], y)
    return {"method": "sigmoid", "a": float(fit.coef_[0, 0]), "b": float(fit.intercept_[0])}


def apply_calibrator(calibrator: dict[str, Any], p: np.ndarray) -> np.ndarray:
    """Calibrated probabilities."""
    if calibrator["method"] == "isotonic":
        return np.interp(p, calibrator["x"], calibrator["y"])
    return 1.0 / (1.0 + np.exp(-(calibrator["a"] * _logit(p) + calibrator["b"])))


def checked_calibrator(value: object, where: str) -> dict[str, Any] | None:
    """A calibrator read from a saved pipeline: only the fields and finite numbers it may hold."""
    if value is None:
        return None
    bad = RunError(f"{where}: the saved calibration is malformed; the pipeline was changed: run the spec again")
    if not isinstance(value, dict) or value.get("method") not in ("isotonic", "sigmoid"):
        raise bad
    if value["method"] == "isotonic":
        if set(value) != {"method", "x", "y"}:
            raise bad
        x, y = (np.asarray(value[k], dtype=np.float64) if isinstance(value[k], list) else None for k in ("x", "y"))
        if x is None or y is None or x.ndim != 1 or x.shape != y.shape or len(x) == 0 \
                or not (np.isfinite(x).all() and np.isfinite(y).all()) or (np.diff(x) < 0).any():
            raise bad
        return {"method": "isotonic", "x": x.tolist(), "y": y.tolist()}
    if set(value) != {"method", "a", "b"} or not all(isinstance(value[k], int | float) and np.isfinite(value[k])
                                                      for k in ("a", "b")):
        raise bad
    return {"method": "sigmoid", "a": float(value["a"]), "b": float(value["b"])}
