"""``explain.permutation``: how much the run's metric drops when one feature is shuffled."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field, PositiveInt

from tumorboard.api import (
    Options,
    DEFAULT_METRICS,
    GREATER_IS_BETTER,
    METRICS,
    Attribution,
    ComponentError,
    Explainer,
    FeatureBlock,
    Model,
    Target,
    score,
)


class PermutationExplainer(Explainer):
    """Permutation importance: the drop in a metric when one feature's values are shuffled.

    Model-agnostic and honest about what the model relies on; correlated
    features share (and so each understate) their importance.
    """

    name = "explain.permutation"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})

    class Options(Options):
        n_repeats: PositiveInt = Field(5, description="Shuffles per feature; the spread is their SD.")
        metric: str | None = Field(None, description="Metric to score; default the task's first metric.")
        max_patients: PositiveInt = Field(2000, description="Score on at most this many patients (sampled).")

    def explain(
        self,
        model: Model,
        X: FeatureBlock,
        feature_names: Sequence[str],
        y: Target | None = None,
    ) -> Attribution:
        if y is None:
            raise ComponentError(f"{self.name}: needs the target to score against")
        if len(y) != len(X.ids):
            raise ComponentError(f"{self.name}: {len(X.ids)} patients but {len(y)} target values")
        metric = self.options.metric or DEFAULT_METRICS[y.kind][0]
        if metric not in METRICS[y.kind]:
            raise ComponentError(
                f"{self.name}: options.metric = {metric!r} is not a {y.kind} metric; "
                f"choose from {', '.join(METRICS[y.kind])}"
            )
        rng = np.random.default_rng(self.seed)
        if len(X.ids) > self.options.max_patients:
            keep = np.sort(rng.choice(len(X.ids), self.options.max_patients, replace=False))
            X, y = X.take(keep), y.take(keep)
        sign = 1.0 if GREATER_IS_BETTER.get(metric, True) else -1.0
        baseline = score(y.kind, metric, y, model.predict(X))
        drops = np.zeros((len(feature_names), self.options.n_repeats))
        for j in range(len(feature_names)):
            for r in range(self.options.n_repeats):
                values = X.values.copy()
                values[:, j] = values[rng.permutation(len(values)), j]
                shuffled = FeatureBlock(X.ids, values, X.feature_names, X.presence, X.modality, X.sources)
                drops[j, r] = sign * (baseline - score(y.kind, metric, y, model.predict(shuffled)))
        return Attribution(
            method=self.name,
            feature_names=tuple(feature_names),
            importance=drops.mean(axis=1),
            spread=drops.std(axis=1),
            sources=X.sources,
        )
