"""Meta-learners: each patient's outcome under each candidate treatment, over any model plugin.

All learners see training patients only. For a binary outcome they estimate
the response probability under each arm; the effect of a candidate is its
probability minus the reference arm's. For a survival outcome (S- and
T-learners) they estimate a risk score per arm and the effect is the reference
risk minus the candidate's (positive = benefit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tumorboard.api import DataError, FeatureBlock, Model, Target

ModelFactory = Callable[[], Model]


def _with(X: FeatureBlock, extra: np.ndarray, names: list[str]) -> FeatureBlock:
    return FeatureBlock(X.ids, np.concatenate([X.values, extra], axis=1), X.feature_names + tuple(names),
                        X.presence, X.modality)


def _rows(X: FeatureBlock, rows: np.ndarray) -> FeatureBlock:
    return X.take(rows)


def _outcome(model: Model, X: FeatureBlock, kind: str) -> np.ndarray:
    """What the base model predicts, on a 'higher is better' scale for effects."""
    pred = np.asarray(model.predict(X), dtype=np.float64)
    return pred if kind == "binary" else -pred  # survival: minus risk


@dataclass
class ArmData:
    X: FeatureBlock
    arm: np.ndarray  # index into arms
    y: Target


class MetaLearner:
    """Estimates the outcome under every arm; ``fit`` on training patients, ``predict`` on any."""

    def __init__(self, kind: str, arms: list[str], reference: int, outcome_model: ModelFactory,
                 effect_model: ModelFactory, propensity: Callable[[FeatureBlock], np.ndarray] | None):
        self.kind, self.arms, self.reference = kind, arms, reference
        self.outcome_model, self.effect_model, self.propensity = outcome_model, effect_model, propensity

    def fit(self, data: ArmData) -> MetaLearner:
        raise NotImplementedError

    def predict(self, X: FeatureBlock) -> np.ndarray:
        """(patients, arms): expected outcome under each arm (higher is better)."""
        return self.predict_both(X)[0]

    def predict_both(self, X: FeatureBlock) -> tuple[np.ndarray, np.ndarray]:
        """(outcome under each arm, effect of each arm against the reference); both (patients, arms).

        X- and DR-learners estimate the effect directly; their outcome under a
        candidate is the reference outcome plus that effect, clipped to [0, 1]
        for probabilities, while the effect itself is never clipped.
        """
        mu = self.predict_outcomes(X)
        return mu, mu - mu[:, [self.reference]]

    def predict_outcomes(self, X: FeatureBlock) -> np.ndarray:
        raise NotImplementedError


class SLearner(MetaLearner):
    """One outcome model with the treatment as a feature (the baseline)."""

    def fit(self, data: ArmData) -> SLearner:
        onehot = np.eye(len(self.arms))[data.arm][:, 1:]
        self.model_ = self.outcome_model().fit(_with(data.X, onehot, self._names()), data.y)
        return self

    def _names(self) -> list[str]:
        return [f"treatment={a}" for a in self.arms[1:]]

    def predict_outcomes(self, X: FeatureBlock) -> np.ndarray:
        out = []
        for k in range(len(self.arms)):
            onehot = np.zeros((len(X.ids), len(self.arms) - 1))
            if k > 0:
                onehot[:, k - 1] = 1
            out.append(_outcome(self.model_, _with(X, onehot, self._names()), self.kind))
        return np.stack(out, axis=1)


class TLearner(MetaLearner):
    """One outcome model per arm, each fitted on that arm's patients."""

    def fit(self, data: ArmData) -> TLearner:
        self.models_ = []
        for k in range(len(self.arms)):
            rows = np.flatnonzero(data.arm == k)
            self.models_.append(self.outcome_model().fit(_rows(data.X, rows), data.y.take(rows)))
        return self

    def predict_outcomes(self, X: FeatureBlock) -> np.ndarray:
        return np.stack([_outcome(m, X, self.kind) for m in self.models_], axis=1)


def _regression_target(values: np.ndarray) -> Target:
    return Target("regression", np.asarray(values, dtype=np.float64))


class XLearner(MetaLearner):
    """Kuenzel et al. (2019): imputed effects per arm, regressed, blended by the propensity."""

    def fit(self, data: ArmData) -> XLearner:
        self.base_ = TLearner(self.kind, self.arms, self.reference, self.outcome_model, self.effect_model, None).fit(data)
        mu = self.base_.predict_outcomes(data.X)
        r = self.reference
        y = data.y.values.astype(np.float64)
        self.tau_ = {}
        for k in range(len(self.arms)):
            if k == r:
                continue
            treated, control = np.flatnonzero(data.arm == k), np.flatnonzero(data.arm == r)
            d_treated = y[treated] - mu[treated, r]
            d_control = mu[control, k] - y[control]
            self.tau_[k] = (
                self.effect_model().fit(_rows(data.X, treated), _regression_target(d_treated)),
                self.effect_model().fit(_rows(data.X, control), _regression_target(d_control)),
            )
        return self

    def predict_both(self, X: FeatureBlock) -> tuple[np.ndarray, np.ndarray]:
        effect = np.zeros((len(X.ids), len(self.arms)))
        for k, (tau_treated, tau_control) in self.tau_.items():
            g = self.propensity(X)[:, k] if self.propensity else np.full(len(X.ids), 0.5)
            effect[:, k] = g * tau_control.predict(X) + (1 - g) * tau_treated.predict(X)
        return _combine(self.base_.predict_outcomes(X), effect, self.reference, self.kind), effect


class DRLearner(MetaLearner):
    """Kennedy (2023): doubly robust pseudo-outcomes with 2-fold cross-fitting, then a regression."""

    def __init__(self, *args, clip: tuple[float, float] = (0.01, 0.99), seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.clip, self.seed = clip, seed

    def fit(self, data: ArmData) -> DRLearner:
        from sklearn.model_selection import StratifiedKFold

        n = len(data.y)
        y = data.y.values.astype(np.float64)
        mu = np.zeros((n, len(self.arms)))
        e = np.zeros((n, len(self.arms)))
        folds = StratifiedKFold(2, shuffle=True, random_state=self.seed)
        for a, b in folds.split(np.zeros(n), data.arm):
            part = ArmData(data.X.take(a), data.arm[a], data.y.take(a))
            t = TLearner(self.kind, self.arms, self.reference, self.outcome_model, self.effect_model, None).fit(part)
            mu[b] = t.predict_outcomes(data.X.take(b))
            e[b] = self.propensity(data.X.take(b)) if self.propensity else 1 / len(self.arms)
        e = np.clip(e, *self.clip)
        r = self.reference
        self.tau_ = {}
        for k in range(len(self.arms)):
            if k == r:
                continue
            is_k, is_r = (data.arm == k).astype(float), (data.arm == r).astype(float)
            pseudo = (mu[:, k] - mu[:, r] + is_k * (y - mu[:, k]) / e[:, k] - is_r * (y - mu[:, r]) / e[:, r])
            rows = np.flatnonzero((data.arm == k) | (data.arm == r))
            self.tau_[k] = self.effect_model().fit(data.X.take(rows), _regression_target(pseudo[rows]))
        self.base_ = TLearner(self.kind, self.arms, self.reference, self.outcome_model, self.effect_model, None).fit(data)
        return self

    def predict_both(self, X: FeatureBlock) -> tuple[np.ndarray, np.ndarray]:
        effect = np.zeros((len(X.ids), len(self.arms)))
        for k, model in self.tau_.items():
            effect[:, k] = model.predict(X)
        return _combine(self.base_.predict_outcomes(X), effect, self.reference, self.kind), effect


def _combine(mu: np.ndarray, effect: np.ndarray, reference: int, kind: str) -> np.ndarray:
    out = mu[:, [reference]] + effect
    return np.clip(out, 0, 1) if kind == "binary" else out


LEARNERS = {"s": SLearner, "t": TLearner, "x": XLearner, "dr": DRLearner}


def check_arms(arm: np.ndarray, arms: list[str], minimum: int, where: str) -> None:
    """Every arm needs enough training patients to fit its models."""
    counts = np.bincount(arm, minlength=len(arms))
    for name, count in zip(arms, counts, strict=True):
        if count < minimum:
            raise DataError(
                f"{where}: treatment {name!r} has {count} training patient(s) (fewer than "
                f"treatment.min_arm_size = {minimum}); use fewer folds, pool rare treatments, or drop the candidate"
            )
