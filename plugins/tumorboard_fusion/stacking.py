"""``fusion.stacking``: late fusion — one model per modality, their cross-fitted predictions as features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from tumorboard.api import component_class, ComponentError, FeatureBlock, Fusion, Model, Options, Target

from .checks import check_fit_inputs, check_transform_inputs
from .concat import ConcatFusion

DEFAULT_BASE = {"binary": "model.logistic", "multiclass": "model.logistic", "regression": "model.gbm",
                "survival": "model.coxnet"}


class BaseModelSpec(Options):
    """The per-modality model: a model plugin and its options."""
    plugin: str
    options: dict[str, Any] = Field(default_factory=dict)
    _cls: type[Model] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> BaseModelSpec:
        # from the registry of the spec being built (its context), never a global one
        self._cls = component_class("model", self.plugin, info)
        self._cls.Options.model_validate(self.options, context=info.context)
        return self

    @property
    def cls(self) -> type[Model]:
        return self._cls or component_class("model", self.plugin)


class StackingFusion(Fusion):
    """Late fusion: a model per modality, whose predictions become the features of the run's model.

    For the training patients the features are out-of-fold predictions from
    an inner split of those patients only (``fit_transform``), so the run's
    model (the meta-model) never sees a prediction made by a base model that
    was fitted on that patient's own label; other patients get the predictions
    of base models refitted on all training patients. Each base model sees
    only the patients who have its modality; for a patient without it the
    prediction is marked absent (0 after standardising, and a
    ``MODALITY:present`` column of 0).
    """

    name = "fusion.stacking"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})

    class Options(Options):
        base: BaseModelSpec | None = Field(
            None, description="Model per modality (default: model.logistic; model.gbm for regression; model.coxnet for survival).")
        inner_folds: int = Field(5, ge=2, description="Inner folds of the training patients for the cross-fitted predictions.")
        _defaults: dict[str, type[Model]] = PrivateAttr(default_factory=dict)

        @model_validator(mode="after")
        def _default_bases(self, info: ValidationInfo):
            # the default base model per task, from the spec's registry (one that is not installed here
            # fails only when a run of its task needs it)
            if self.base is None:
                for task, plugin in DEFAULT_BASE.items():
                    try:
                        self._defaults[task] = component_class("model", plugin, info)
                    except ComponentError:
                        pass
            return self

    def _base(self, task: str, k: int) -> Model:
        spec = self.options.base
        cls = spec.cls if spec is not None else self.options._defaults.get(task) or component_class(
            "model", DEFAULT_BASE[task])
        model = cls(cls.Options.model_validate(spec.options if spec is not None else {}), seed=self.seed + k)
        if task not in model.tasks:
            raise ComponentError(f"{self.name}: base model {cls.name} does not support task {task!r}")
        return model

    def _scores(self, prediction: np.ndarray) -> np.ndarray:
        """Predictions on an additive scale: logits, log-probabilities, risks or values."""
        p = np.asarray(prediction, np.float64)
        if self.kind_ == "binary":
            q = np.clip(p, 1e-6, 1 - 1e-6)
            return np.log(q / (1 - q))[:, None]
        if self.kind_ == "multiclass":
            return np.log(np.clip(p, 1e-6, 1))
        return (p if p.ndim == 1 else p[:, 0])[:, None]  # survival: the risk (curves dropped)

    def fit(self, blocks: Sequence[FeatureBlock], y: Target) -> Self:
        self.fit_transform(blocks, y)
        return self

    def fit_transform(self, blocks: Sequence[FeatureBlock], y: Target) -> FeatureBlock:
        from sklearn.model_selection import KFold, StratifiedKFold

        check_fit_inputs(self.name, blocks, y)
        self.kind_, self.n_classes_ = y.kind, y.n_classes
        self.modalities_ = [b.modality for b in blocks]
        self.feature_names_ = [list(b.feature_names) for b in blocks]
        self.scalers_, self.models_ = [], []
        columns = []
        for k, block in enumerate(blocks):
            rows = np.flatnonzero(block.presence)
            yk = y.take(rows)
            oof = None
            strata = yk.strata()
            folds = min(self.options.inner_folds, int(np.bincount(strata).min()) if y.kind != "regression" else len(rows))
            if folds >= 2:
                splitter = (KFold(folds, shuffle=True, random_state=self.seed) if y.kind == "regression"
                            else StratifiedKFold(folds, shuffle=True, random_state=self.seed))
                for inner_train, inner_test in splitter.split(rows, strata):
                    scaler, model = self._fit_one(block, rows[inner_train], y.take(rows[inner_train]), k)
                    score = self._scores(model.predict(self._scaled(scaler, block, rows[inner_test])))
                    oof = np.zeros((len(rows), score.shape[1])) if oof is None else oof
                    oof[inner_test] = score
            scaler, model = self._fit_one(block, rows, yk, k)
            self.scalers_.append(scaler)
            self.models_.append(model)
            if oof is None:  # too few patients per class for an inner split: in-sample (reported by the kit's tests)
                oof = self._scores(model.predict(self._scaled(scaler, block, rows)))
            full = np.full((len(block.ids), oof.shape[1]), np.nan)
            full[rows] = oof
            columns.append(full)
        # standardise each score with its training (cross-fitted) mean and SD, so an absent input is 0
        self.mean_ = [np.nanmean(c, axis=0) for c in columns]
        self.sd_ = [np.where(np.nanstd(c, axis=0) > 0, np.nanstd(c, axis=0), 1.0) for c in columns]
        return self._assemble(blocks, columns)

    def _fit_one(self, block: FeatureBlock, rows: np.ndarray, y: Target, k: int) -> tuple[ConcatFusion, Model]:
        part = block.take(rows)
        scaler = ConcatFusion(presence_indicators=False).fit([part], y)
        model = self._base(y.kind, k).fit(scaler.transform([part]), y)
        return scaler, model

    @staticmethod
    def _scaled(scaler: ConcatFusion, block: FeatureBlock, rows: np.ndarray) -> FeatureBlock:
        return scaler.transform([block.take(rows)])

    def transform(self, blocks: Sequence[FeatureBlock]) -> FeatureBlock:
        self.check_is_fitted()
        check_transform_inputs(self.name, blocks, self.modalities_, self.feature_names_)
        columns = []
        for block, scaler, model in zip(blocks, self.scalers_, self.models_, strict=True):
            rows = np.flatnonzero(block.presence)
            score = self._scores(model.predict(self._scaled(scaler, block, rows))) if len(rows) else None
            width = score.shape[1] if score is not None else (self.n_classes_ if self.kind_ == "multiclass" else 1)
            full = np.full((len(block.ids), width), np.nan)
            if score is not None:
                full[rows] = score
            columns.append(full)
        return self._assemble(blocks, columns)

    def _assemble(self, blocks: Sequence[FeatureBlock], columns: list[np.ndarray]) -> FeatureBlock:
        parts, names, sources = [], [], []
        for block, values, mean, sd in zip(blocks, columns, self.mean_, self.sd_, strict=True):
            z = np.nan_to_num((values - mean) / sd, nan=0.0)  # absent: the training average
            parts += [z, block.presence[:, None].astype(np.float64)]
            score_names = ["score"] if values.shape[1] == 1 else [f"score_{j}" for j in range(values.shape[1])]
            names += [f"{block.modality}:{n}" for n in score_names] + [f"{block.modality}:present"]
            sources += [block.modality] * (values.shape[1] + 1)
        return FeatureBlock(blocks[0].ids, np.concatenate(parts, axis=1), tuple(names),
                            np.ones(len(blocks[0].ids), bool), "fused", tuple(sources))

    # base models and scalers are components: save each one's own state
    def get_state(self) -> dict[str, Any]:
        return {"kind_": self.kind_, "n_classes_": self.n_classes_, "modalities_": self.modalities_,
                "feature_names_": self.feature_names_, "mean_": self.mean_, "sd_": self.sd_,
                "scalers_": [s.get_state() for s in self.scalers_], "models_": [m.get_state() for m in self.models_]}

    def set_state(self, state: dict[str, Any]) -> None:
        for key in ("kind_", "n_classes_", "modalities_", "feature_names_"):
            setattr(self, key, state[key])
        self.mean_, self.sd_ = list(state["mean_"]), list(state["sd_"])
        self.scalers_ = []
        for s in state["scalers_"]:
            scaler = ConcatFusion(presence_indicators=False)
            scaler.set_state(s)
            self.scalers_.append(scaler)
        self.models_ = []
        for k, s in enumerate(state["models_"]):
            model = self._base(self.kind_, k)
            model.set_state(s)
            self.models_.append(model)
