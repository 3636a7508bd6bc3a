"""A nearest-centroid classifier for tumorboard, published as an ordinary package."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from tumorboard.api import ComponentError, Model, hookimpl


class CentroidModel(Model):
    """Nearest-centroid classifier: softmax over negative squared distances to class means."""

    name = "model.centroid"
    tasks = frozenset({"binary", "multiclass"})

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        temperature: PositiveFloat = Field(1.0, description="Softmax temperature over distances.")

    def fit(self, X, y):
        if len(X.ids) != len(y):
            raise ComponentError(f"{self.name}: {len(X.ids)} rows but {len(y)} target values")
        values = np.nan_to_num(X.values.astype(np.float64))
        k = max(y.n_classes, 2)
        overall = values.mean(axis=0)
        self.centroids_ = np.stack(
            [values[y.values == c].mean(axis=0) if (y.values == c).any() else overall for c in range(k)]
        )
        return self

    def predict(self, X):
        self.check_is_fitted()
        values = np.nan_to_num(X.values.astype(np.float64))
        d = ((values[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)
        logits = -d / (self.options.temperature * values.shape[1])
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return p[:, 1] if len(self.centroids_) == 2 else p


@hookimpl
def register_models(register):
    register(CentroidModel)
