"""Survival models through scikit-survival: penalised Cox, random survival forest, gradient boosting.

Each predicts a risk score (larger = earlier event) and survival curves S(t | x).
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from tumorboard.api import FeatureBlock, Options, Target

from .base import EstimatorModel


def structured(y: Target):
    from sksurv.util import Surv

    return Surv.from_arrays(event=y.event.astype(bool), time=y.values.astype(np.float64))


class _SurvivalModel(EstimatorModel):
    tasks = frozenset({"survival"})
    provides_survival_curves = True

    def build(self, values: np.ndarray, y: Target):
        raise NotImplementedError

    def fit(self, X: FeatureBlock, y: Target) -> Self:
        values = self.check_fit_input(X, y)
        if int(y.event.sum()) < 2:
            from tumorboard.api import ComponentError

            raise ComponentError(f"{self.name}: the training patients hold {int(y.event.sum())} event(s); need at least 2")
        self.estimator_ = self.build(values, y)
        self.n_features_ = values.shape[1]
        return self

    def predict(self, X: FeatureBlock) -> np.ndarray:
        self.check_is_fitted()
        return np.asarray(self.estimator_.predict(self.check_matrix(X)), dtype=np.float64)

    def _survival_functions(self, matrix: np.ndarray):
        return self.estimator_.predict_survival_function(matrix)

    def predict_survival(self, X: FeatureBlock, times: np.ndarray) -> np.ndarray:
        self.check_is_fitted()
        functions = self._survival_functions(self.check_matrix(X))
        out = np.empty((len(functions), len(times)))
        for i, fn in enumerate(functions):
            lo, hi = fn.domain
            # before the first event time S = 1; past the last, carry the last value
            out[i] = np.where(np.asarray(times) < lo, 1.0, fn(np.clip(times, lo, hi)))
        return out


class CoxnetModel(_SurvivalModel):
    """Penalised Cox proportional hazards (elastic net, scikit-survival's Coxnet).

    The penalty strength is chosen by an inner cross-validation on the training
    patients (Harrell's C) unless ``alpha`` is given.
    """

    name = "model.coxnet"
    requires = ("sksurv",)
    install = 'pip install "tumorboard[survival]"'

    class Options(Options):
        l1_ratio: float = Field(0.5, gt=0, le=1, description="Elastic-net mixing: 1 is lasso.")
        alpha: PositiveFloat | None = Field(None, description="Penalty strength; default: chosen by inner CV.")
        n_alphas: PositiveInt = Field(30, description="Penalties on the path searched by the inner CV.")
        alpha_min_ratio: float = Field(0.01, gt=0, lt=1, description="Smallest penalty relative to the largest.")
        inner_folds: int = Field(3, ge=2, description="Folds of the inner CV that picks alpha.")

    def build(self, values: np.ndarray, y: Target):
        from sklearn.model_selection import StratifiedKFold
        from sksurv.linear_model import CoxnetSurvivalAnalysis

        from tumorboard.api import score

        o = self.options
        target = structured(y)
        # The model is the regularisation path, each solution warm-starting the next, and it predicts at
        # the chosen penalty: a fit at that one penalty from zero can diverge ("weights are too large")
        # on wide, correlated matrices (scikit-survival's 76 breast cancer genes) where the path converges.
        path = CoxnetSurvivalAnalysis(l1_ratio=o.l1_ratio, n_alphas=o.n_alphas, alpha_min_ratio=o.alpha_min_ratio,
                                      fit_baseline_model=o.alpha is None).fit(values, target)
        alphas = path.alphas_
        if o.alpha is None:
            folds = StratifiedKFold(o.inner_folds, shuffle=True, random_state=self.seed)
            scores = np.zeros(len(alphas))
            for train, test in folds.split(values, y.event):
                inner = CoxnetSurvivalAnalysis(l1_ratio=o.l1_ratio, alphas=alphas).fit(values[train], target[train])
                for k, a in enumerate(alphas):
                    risk = inner.predict(values[test], alpha=a)
                    c = score("survival", "c_index", y.take(test), risk)
                    scores[k] += c if np.isfinite(c) else 0.5
            self.alpha_ = np.array([float(alphas[int(np.argmax(scores))])])
            return path  # the chosen penalty is on the path: its solution is already there
        # a given penalty: the path's penalties above it, then it
        self.alpha_ = np.array([o.alpha])
        down_to = np.r_[alphas[alphas > o.alpha], o.alpha]
        return CoxnetSurvivalAnalysis(l1_ratio=o.l1_ratio, alphas=down_to, fit_baseline_model=True).fit(values, target)

    def predict(self, X: FeatureBlock) -> np.ndarray:
        self.check_is_fitted()
        return np.asarray(self.estimator_.predict(self.check_matrix(X), alpha=float(self.alpha_[0])), dtype=np.float64)

    def _survival_functions(self, matrix: np.ndarray):
        return self.estimator_.predict_survival_function(matrix, alpha=float(self.alpha_[0]))


class RandomSurvivalForestModel(_SurvivalModel):
    """Random survival forest (scikit-survival)."""

    name = "model.rsf"
    requires = ("sksurv",)
    install = 'pip install "tumorboard[survival]"'

    class Options(Options):
        n_estimators: PositiveInt = Field(200, description="Trees.")
        min_samples_split: PositiveInt = Field(10, description="Patients needed to split a node.")
        min_samples_leaf: PositiveInt = Field(15, description="Patients per leaf at least.")
        max_features: Literal["sqrt", "log2"] | PositiveFloat = Field("sqrt", description="Features tried per split.")
        n_jobs: int = Field(1, description="Parallel jobs (-1: all cores).")

    def build(self, values: np.ndarray, y: Target):
        from sksurv.ensemble import RandomSurvivalForest

        o = self.options
        return RandomSurvivalForest(n_estimators=o.n_estimators, min_samples_split=o.min_samples_split,
                                    min_samples_leaf=o.min_samples_leaf, max_features=o.max_features,
                                    n_jobs=o.n_jobs, random_state=self.seed).fit(values, structured(y))


class GradientBoostedSurvivalModel(_SurvivalModel):
    """Gradient-boosted Cox model with regression trees (scikit-survival)."""

    name = "model.gbsurv"
    requires = ("sksurv",)
    install = 'pip install "tumorboard[survival]"'

    class Options(Options):
        n_estimators: PositiveInt = Field(200, description="Boosting stages.")
        learning_rate: PositiveFloat = Field(0.05, description="Shrinkage per stage.")
        max_depth: PositiveInt = Field(3, description="Depth of each tree.")
        subsample: float = Field(0.8, gt=0, le=1, description="Share of training patients per stage.")
        min_samples_leaf: PositiveInt = Field(10, description="Patients per leaf at least.")

    def build(self, values: np.ndarray, y: Target):
        from sksurv.ensemble import GradientBoostingSurvivalAnalysis

        o = self.options
        return GradientBoostingSurvivalAnalysis(
            n_estimators=o.n_estimators, learning_rate=o.learning_rate, max_depth=o.max_depth,
            subsample=o.subsample, min_samples_leaf=o.min_samples_leaf, random_state=self.seed,
        ).fit(values, structured(y))
