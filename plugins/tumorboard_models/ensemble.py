"""``model.ensemble``: soft voting or stacking over any installed models."""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator
from scipy.special import expit, logit, softmax

from tumorboard.api import component_class, ComponentError, FeatureBlock, Model, Options, Target


class Member(Options):
    """One model of the ensemble: a plugin name and its options."""
    plugin: str
    options: dict[str, Any] = Field(default_factory=dict)
    _cls: type[Model] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Member:
        # from the registry of the spec being built (its context), never a global one
        self._cls = component_class("model", self.plugin, info)  # raises with the installed list
        self._cls.Options.model_validate(self.options, context=info.context)
        return self

    @property
    def cls(self) -> type[Model]:
        return self._cls or component_class("model", self.plugin)


class EnsembleModel(Model):
    """Combines several models: soft voting (weighted mean of predictions) or stacking.

    Stacking fits a meta-model (logistic, ridge or Cox by task) on the members'
    out-of-fold predictions from an inner split of the training patients only,
    then refits the members on all training patients. Survival risks are
    standardised per member before they are combined.
    """

    name = "model.ensemble"

    class Options(Options):
        models: list[Member] = Field(min_length=2, description="Member models, e.g. [{plugin = 'model.gbm'}, ...].")
        method: Literal["vote", "stack"] = Field("vote", description="Soft voting, or a stacked meta-model.")
        weights: list[float] | None = Field(None, description="Voting weights, one per member (default equal).")
        stack_folds: int = Field(5, ge=2, description="Inner folds that produce the meta-model's inputs.")

        @model_validator(mode="after")
        def _members_exist(self):
            for i, member in enumerate(self.models):
                if member.cls is EnsembleModel:
                    raise ValueError(f"models[{i}]: an ensemble cannot contain another ensemble")
            if self.weights is not None and len(self.weights) != len(self.models):
                raise ValueError(f"{len(self.weights)} weights for {len(self.models)} models")
            return self

    def _members(self) -> list[Model]:
        out = []
        for i, member in enumerate(self.options.models):
            model = member.cls(member.cls.Options.model_validate(member.options), seed=self.seed + i)
            out.append(model)
        return out

    @property
    def tasks(self) -> frozenset[str]:  # type: ignore[override]
        """The tasks every member supports."""
        common = frozenset({"binary", "multiclass", "regression", "survival"})
        for member in self.options.models:
            common &= member.cls.tasks
        return common

    @property
    def provides_survival_curves(self) -> bool:  # type: ignore[override]
        return self.options.method == "vote" and all(
            m.cls.provides_survival_curves for m in self.options.models)

    def fit(self, X: FeatureBlock, y: Target) -> Self:
        if len(X.ids) != len(y):
            raise ComponentError(f"{self.name}: fit() got {len(X.ids)} rows but {len(y)} target values")
        members = self._members()
        for m in members:
            if y.kind not in m.tasks:
                raise ComponentError(f"{self.name}: member {m.name} does not support task {y.kind!r}")
        self.kind_ = y.kind
        self.n_classes_ = y.n_classes
        if self.options.method == "stack":
            self.meta_ = self._fit_meta(members, X, y)
        for m in members:
            m.fit(X, y)
        self.members_ = members
        self.scale_ = [self._scale(m.predict(X)) for m in members] if y.kind == "survival" else []
        return self

    def _scale(self, risk: np.ndarray) -> np.ndarray:
        sd = risk.std()
        return np.array([risk.mean(), sd if sd > 0 else 1.0])

    def _features(self, predictions: list[np.ndarray], scales: list[np.ndarray] | None = None) -> np.ndarray:
        cols = []
        for k, p in enumerate(predictions):
            if self.kind_ == "binary":
                cols.append(logit(np.clip(p, 1e-6, 1 - 1e-6))[:, None])
            elif self.kind_ == "multiclass":
                cols.append(np.log(np.clip(p, 1e-6, 1)))
            elif self.kind_ == "survival":
                mean, sd = (scales[k] if scales else self._scale(p))
                cols.append(((p - mean) / sd)[:, None])
            else:
                cols.append(p[:, None])
        return np.concatenate(cols, axis=1)

    def _fit_meta(self, members: list[Model], X: FeatureBlock, y: Target) -> dict[str, np.ndarray]:
        from sklearn.model_selection import KFold, StratifiedKFold

        strata = y.strata()
        splitter = (KFold(self.options.stack_folds, shuffle=True, random_state=self.seed) if y.kind == "regression"
                    else StratifiedKFold(self.options.stack_folds, shuffle=True, random_state=self.seed))
        oof: list[np.ndarray | None] = [None] * len(members)
        for train, test in splitter.split(X.values, strata):
            for k, m in enumerate(members):
                pred = m.clone().fit(X.take(train), y.take(train)).predict(X.take(test))
                if oof[k] is None:
                    oof[k] = np.zeros((len(y),) + pred.shape[1:])
                oof[k][test] = pred
        Z = self._features(oof)  # type: ignore[arg-type]
        if y.kind in ("binary", "multiclass"):
            from sklearn.linear_model import LogisticRegression

            meta = LogisticRegression(C=1.0, max_iter=1000).fit(Z, y.values)
            return {"coef": np.atleast_2d(meta.coef_), "intercept": np.atleast_1d(meta.intercept_)}
        if y.kind == "regression":
            from sklearn.linear_model import Ridge

            meta = Ridge(alpha=1.0).fit(Z, y.values)
            return {"coef": meta.coef_[None, :], "intercept": np.atleast_1d(meta.intercept_)}
        from sksurv.linear_model import CoxPHSurvivalAnalysis
        from sksurv.util import Surv

        meta = CoxPHSurvivalAnalysis(alpha=0.1).fit(Z, Surv.from_arrays(y.event.astype(bool), y.values))
        return {"coef": meta.coef_[None, :], "intercept": np.zeros(1)}

    def predict(self, X: FeatureBlock) -> np.ndarray:
        self.check_is_fitted()
        predictions = [m.predict(X) for m in self.members_]
        if self.options.method == "stack":
            z = self._features(predictions, self.scale_) @ self.meta_["coef"].T + self.meta_["intercept"]
            if self.kind_ == "binary":
                return expit(z[:, 0])
            if self.kind_ == "multiclass":
                return softmax(z, axis=1)
            return z[:, 0]
        weights = np.asarray(self.options.weights or [1.0] * len(predictions), dtype=float)
        weights = weights / weights.sum()
        if self.kind_ == "survival":
            predictions = [(p - s[0]) / s[1] for p, s in zip(predictions, self.scale_, strict=True)]
        return sum(w * p for w, p in zip(weights, predictions, strict=True))

    def predict_survival(self, X: FeatureBlock, times: np.ndarray) -> np.ndarray:
        if not self.provides_survival_curves:
            raise NotImplementedError(f"{self.name}: survival curves need method = 'vote' and members that give them")
        weights = np.asarray(self.options.weights or [1.0] * len(self.members_), dtype=float)
        weights = weights / weights.sum()
        return sum(w * m.predict_survival(X, times) for w, m in zip(weights, self.members_, strict=True))

    # members are components: save each one's own state
    def get_state(self) -> dict[str, Any]:
        return {
            "kind_": self.kind_, "n_classes_": self.n_classes_, "scale_": list(self.scale_),
            "meta_": getattr(self, "meta_", {}), "members_": [m.get_state() for m in self.members_],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        members = self._members()
        for m, s in zip(members, state["members_"], strict=True):
            m.set_state(s)
        self.members_ = members
        self.kind_, self.n_classes_ = state["kind_"], state["n_classes_"]
        self.scale_ = list(state["scale_"])
        if state["meta_"]:
            self.meta_ = state["meta_"]
