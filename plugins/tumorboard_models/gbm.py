"""``model.gbm``: scikit-learn's histogram gradient boosting, with optional calibration."""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from tumorboard.api import FeatureBlock, Options, Target

from .base import EstimatorModel


class GradientBoostingModel(EstimatorModel):
    """Histogram gradient boosting (scikit-learn) for binary, multiclass and regression tasks.

    Handles missing values natively; early stopping holds out part of the
    training patients; ``calibration`` fits isotonic or sigmoid calibration on
    folds of the training patients only.
    """

    name = "model.gbm"
    tasks = frozenset({"binary", "multiclass", "regression"})
    allows_missing = True

    class Options(Options):
        learning_rate: PositiveFloat = Field(0.1, description="Shrinkage per boosting iteration.")
        max_iter: PositiveInt = Field(200, description="Boosting iterations (upper bound with early stopping).")
        max_leaf_nodes: PositiveInt = Field(15, description="Leaves per tree.")
        min_samples_leaf: PositiveInt = Field(20, description="Patients per leaf at least.")
        l2_regularization: float = Field(0.0, ge=0, description="L2 penalty on leaf values.")
        early_stopping: bool = Field(True, description="Stop when a held-out part of the training patients stops improving.")
        validation_fraction: float = Field(0.15, gt=0, lt=0.5, description="Share of training patients for early stopping.")
        n_iter_no_change: PositiveInt = Field(10, description="Patience of early stopping.")
        class_weight: Literal["balanced"] | None = Field(None, description="'balanced' reweights rare classes.")
        calibration: Literal["none", "isotonic", "sigmoid"] = Field("none", description="Probability calibration (classification).")
        calibration_folds: int = Field(3, ge=2, description="Folds of the training patients used to calibrate.")

    def make_estimator(self, kind: str):
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        o = self.options
        common = dict(learning_rate=o.learning_rate, max_iter=o.max_iter, max_leaf_nodes=o.max_leaf_nodes,
                      min_samples_leaf=o.min_samples_leaf, l2_regularization=o.l2_regularization,
                      early_stopping=o.early_stopping, validation_fraction=o.validation_fraction,
                      n_iter_no_change=o.n_iter_no_change, random_state=self.seed)
        if kind == "regression":
            return HistGradientBoostingRegressor(**common)
        return HistGradientBoostingClassifier(class_weight=o.class_weight, **common)

    def fit(self, X: FeatureBlock, y: Target) -> Self:
        values = self.check_fit_input(X, y)
        estimator = self.make_estimator(y.kind)
        if y.is_classification and self.options.calibration != "none":
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.model_selection import StratifiedKFold

            folds = StratifiedKFold(self.options.calibration_folds, shuffle=True, random_state=self.seed)
            estimator = CalibratedClassifierCV(estimator, method=self.options.calibration, cv=folds)
        estimator.fit(values, y.values)
        self.estimator_ = estimator
        self.kind_ = y.kind
        self.n_features_ = values.shape[1]
        self.n_classes_ = max(y.n_classes, 2) if y.is_classification else 0
        return self

    def predict(self, X: FeatureBlock) -> np.ndarray:
        self.check_is_fitted()
        values = self.check_matrix(X)
        if self.kind_ == "regression":
            return self.estimator_.predict(values)
        proba = self.estimator_.predict_proba(values)
        full = np.zeros((len(values), self.n_classes_))
        full[:, np.asarray(self.estimator_.classes_, dtype=int)] = proba  # classes absent in training get 0
        return full[:, 1] if self.n_classes_ == 2 else full
