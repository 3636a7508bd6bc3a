"""``model.logistic``: penalised logistic regression, fitted by scikit-learn, saved as plain arrays."""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt
from scipy.special import expit, softmax

from tumorboard.api import ComponentError, FeatureBlock, Model, Options, Target


class LogisticModel(Model):
    """Penalised logistic regression for binary and multiclass outcomes (scikit-learn, lbfgs).

    Expects complete features (``fusion.concat`` imputes); the learned
    coefficients are stored as arrays, so the saved pipeline needs no pickle.
    """

    name = "model.logistic"
    tasks = frozenset({"binary", "multiclass"})

    class Options(Options):
        C: PositiveFloat = Field(1.0, description="Inverse L2 penalty strength; smaller is stronger.")
        penalty: Literal["l2", "none"] = Field("l2", description="l2, or none for an unpenalised fit.")
        class_weight: Literal["balanced"] | None = Field(None, description="'balanced' reweights rare classes.")
        max_iter: PositiveInt = Field(1000, description="Solver iterations.")

    def fit(self, X: FeatureBlock, y: Target) -> Self:
        from sklearn.linear_model import LogisticRegression

        if len(X.ids) != len(y):
            raise ComponentError(f"{self.name}: fit() got {len(X.ids)} rows but {len(y)} target values")
        if y.kind not in self.tasks:
            raise ComponentError(f"{self.name}: supports binary and multiclass tasks, not {y.kind!r}")
        if np.isnan(X.values).any():
            raise ComponentError(
                f"{self.name}: features hold missing values; use a fusion that imputes (fusion.concat)"
            )
        present = np.unique(y.values)
        if len(present) < 2:
            raise ComponentError(f"{self.name}: the training patients hold a single class")
        model = LogisticRegression(
            C=self.options.C if self.options.penalty == "l2" else np.inf,
            class_weight=self.options.class_weight,
            max_iter=self.options.max_iter,
        )
        model.fit(X.values.astype(np.float64), y.values)
        self.n_classes_ = max(y.n_classes, 2)
        self.feature_names_ = list(X.feature_names)
        if self.n_classes_ == 2:
            self.coef_ = model.coef_[0].copy()
            self.intercept_ = np.array(model.intercept_[0:1])
        else:
            # a class missing from this training fold gets a large negative logit
            coef = np.zeros((self.n_classes_, X.values.shape[1]))
            intercept = np.full(self.n_classes_, -30.0)
            coef[present] = model.coef_
            intercept[present] = model.intercept_
            self.coef_, self.intercept_ = coef, intercept
        return self

    def predict(self, X: FeatureBlock) -> np.ndarray:
        self.check_is_fitted()
        if X.values.shape[1] != len(self.feature_names_):
            raise ComponentError(
                f"{self.name}: got {X.values.shape[1]} features, fitted on {len(self.feature_names_)}"
            )
        values = X.values.astype(np.float64)
        if self.n_classes_ == 2:
            return expit(values @ self.coef_ + self.intercept_[0])
        return softmax(values @ self.coef_.T + self.intercept_, axis=1)
