"""What the estimator-backed models share: input checks and saving the estimator without pickle."""

from __future__ import annotations

from typing import Any

import numpy as np

from tumorboard.api import ComponentError, FeatureBlock, Model, Target, dump_estimator, load_estimator


class EstimatorModel(Model):
    """A model whose learned state is one fitted scikit-learn/scikit-survival estimator.

    Subclasses build the estimator in ``make_estimator`` and keep it in
    ``estimator_``; it is saved with skops (no pickle) through get_state.
    """

    allows_missing = False

    def check_fit_input(self, X: FeatureBlock, y: Target) -> np.ndarray:
        if len(X.ids) != len(y):
            raise ComponentError(f"{self.name}: fit() got {len(X.ids)} rows but {len(y)} target values")
        if y.kind not in self.tasks:
            raise ComponentError(f"{self.name}: supports {', '.join(sorted(self.tasks))}, not {y.kind!r}")
        return self.check_matrix(X)

    def check_matrix(self, X: FeatureBlock) -> np.ndarray:
        values = X.values.astype(np.float64)
        if not self.allows_missing and np.isnan(values).any():
            raise ComponentError(
                f"{self.name}: features hold missing values; use a fusion that imputes (fusion.concat)"
            )
        fitted = getattr(self, "n_features_", None)
        if fitted is not None and values.shape[1] != fitted:
            raise ComponentError(f"{self.name}: got {values.shape[1]} features, fitted on {fitted}")
        return values

    def get_state(self) -> dict[str, Any]:
        state = {k: v for k, v in super().get_state().items() if k != "estimator_"}
        state["estimator_skops_"] = dump_estimator(self.estimator_)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        blob = state.pop("estimator_skops_")
        super().set_state(state)
        self.estimator_ = load_estimator(blob, owner=self.name)
