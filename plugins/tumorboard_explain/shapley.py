"""``explain.shap``: per-patient, per-feature SHAP values of the fitted model (the shap library)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt

from tumorboard.api import Attribution, ComponentError, Explainer, FeatureBlock, Model, Options, Target

# scikit-learn tree ensembles shap's TreeExplainer reads exactly
TREE_ESTIMATORS = (
    "sklearn.ensemble.HistGradientBoostingClassifier", "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.ensemble.GradientBoostingClassifier", "sklearn.ensemble.GradientBoostingRegressor",
    "sklearn.ensemble.RandomForestClassifier", "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesClassifier", "sklearn.ensemble.ExtraTreesRegressor",
)
UNITS = {"binary": "log-odds of {positive}", "multiclass": "log-probability of the predicted class",
         "regression": "predicted value", "survival": "risk score"}
# scikit-learn's multiclass trees add up to each class's raw score (softmax logit), not its log-probability
TREE_MULTICLASS_UNITS = "raw score (softmax logit) of the predicted class"


def _qualified(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__.split('._')[0]}.{cls.__name__}"


def tree_estimator(model: Model):
    """The model's scikit-learn tree ensemble when TreeSHAP can read it exactly, else None."""
    estimator = getattr(model, "estimator_", None)
    return estimator if estimator is not None and _qualified(estimator) in TREE_ESTIMATORS else None


def model_output(model: Model, kind: str, X: FeatureBlock) -> Callable[[np.ndarray], np.ndarray]:
    """The function of the feature matrix that SHAP explains, on the scale named in ``UNITS``.

    Binary probabilities become log-odds so that model-agnostic values share
    the trees' scale (and add up like a linear predictor).
    """

    def f(values: np.ndarray) -> np.ndarray:
        block = FeatureBlock(tuple(str(i) for i in range(len(values))), values, X.feature_names,
                             np.ones(len(values), bool), X.modality, X.sources)
        out = np.asarray(model.predict(block), dtype=np.float64)
        if kind == "binary":
            p = np.clip(out, 1e-9, 1 - 1e-9)
            return np.log(p / (1 - p))
        if kind == "multiclass":
            return np.log(np.clip(out, 1e-12, None))
        return out

    return f


class ShapExplainer(Explainer):
    """SHAP values: each patient's prediction split into additive per-feature contributions.

    Tree ensembles (``model.gbm``, scikit-learn forests) use TreeSHAP
    (exact; path-dependent, so the reference distribution is the training
    patients as the trees saw them); ``model.logistic`` uses the exact linear
    SHAP values against a background of training patients; every other model
    goes through shap's model-agnostic permutation explainer with a background
    sample of training patients (the final model is fitted on every patient,
    so any patient of the run is a training patient). Values are on the
    model's output scale: log-odds for binary tasks, risk score for survival.
    """

    name = "explain.shap"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})
    requires = ("shap",)
    install = 'pip install "tumorboard[explain]"'

    class Options(Options):
        algorithm: Literal["auto", "tree", "linear", "permutation"] = Field(
            "auto", description="auto: tree for tree ensembles, linear for model.logistic, else permutation.")
        background: PositiveInt = Field(100, description="Training patients in the background sample (linear, permutation).")
        max_patients: PositiveInt = Field(5000, description="Explain at most this many patients (sampled).")

    def explain(self, model: Model, X: FeatureBlock, feature_names: Sequence[str], y: Target | None = None) -> Attribution:
        import shap

        kind = y.kind if y is not None else ("multiclass" if np.ndim(model.predict(X.take(np.arange(1)))) == 2 else "regression")
        values = np.asarray(X.values, dtype=np.float64)
        rng = np.random.default_rng(self.seed)
        rows = np.arange(len(values))
        if len(rows) > self.options.max_patients:
            rows = np.sort(rng.choice(len(rows), self.options.max_patients, replace=False))
        background = values[rng.choice(len(values), min(self.options.background, len(values)), replace=False)]
        algorithm = self._algorithm(model)
        f = model_output(model, kind, X)
        if algorithm == "tree":
            explainer = shap.TreeExplainer(tree_estimator(model))
            phi = np.asarray(explainer.shap_values(values[rows], check_additivity=True))
            base = np.asarray(explainer.expected_value, dtype=np.float64)
        elif algorithm == "linear":
            coef = np.asarray(model.coef_, dtype=np.float64)  # type: ignore[attr-defined]
            if coef.ndim != 1:
                raise ComponentError(f"{self.name}: algorithm = 'linear' needs a binary model; use 'permutation'")
            explainer = shap.LinearExplainer((coef, float(model.intercept_[0])), background)  # type: ignore[attr-defined]
            phi = np.asarray(explainer.shap_values(values[rows]))
            base = np.asarray(explainer.expected_value, dtype=np.float64)
        else:
            if np.isnan(values).any():
                raise ComponentError(f"{self.name}: the permutation explainer needs complete features; "
                                     "put a fusion that imputes (fusion.concat) before the model")
            masker = shap.maskers.Independent(background, max_samples=len(background))
            explainer = shap.PermutationExplainer(f, masker, seed=self.seed)
            explanation = explainer(values[rows], max_evals=2 * values.shape[1] + 1, silent=True)
            phi, base = np.asarray(explanation.values), np.asarray(explanation.base_values, dtype=np.float64)
        if kind == "multiclass":  # one signed row per patient: the predicted class's values
            phi, base = _predicted_class(phi, base, f(values[rows]))
        return Attribution(
            method=self.name,
            feature_names=tuple(feature_names),
            importance=np.abs(phi).mean(axis=0),
            spread=np.abs(phi).std(axis=0),
            ids=tuple(X.ids[i] for i in rows),
            per_patient=phi,
            sources=X.sources,
            # one baseline when every patient shares it (multiclass: each predicted class has its own)
            baseline=float(base.ravel()[0]) if np.allclose(base, base.ravel()[0]) else None,
            units=(TREE_MULTICLASS_UNITS if kind == "multiclass" and algorithm == "tree" else
                   UNITS[kind].format(positive=y.classes[1] if y is not None and len(y.classes) > 1 else "class 1")),
        )

    def _algorithm(self, model: Model) -> str:
        chosen = self.options.algorithm
        if chosen == "auto":
            if tree_estimator(model) is not None:
                return "tree"
            return "linear" if np.ndim(getattr(model, "coef_", np.zeros((2, 2)))) == 1 else "permutation"
        if chosen == "tree" and tree_estimator(model) is None:
            raise ComponentError(f"{self.name}: algorithm = 'tree' needs a scikit-learn tree ensemble; "
                                 f"{model.name} is not one (use 'auto' or 'permutation')")
        if chosen == "linear" and not hasattr(model, "coef_"):
            raise ComponentError(f"{self.name}: algorithm = 'linear' needs a linear model; {model.name} is not one")
        return chosen


def _predicted_class(phi: np.ndarray, base: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multiclass SHAP values (patients, features, classes) reduced to each patient's predicted class."""
    if phi.ndim != 3 or phi.shape[0] != len(output):
        raise ComponentError(f"explain.shap: unexpected multiclass SHAP output of shape {phi.shape}")
    chosen = np.argmax(output, axis=1)
    rows = np.arange(len(chosen))
    return phi[rows, :, chosen], (base[rows, chosen] if base.ndim == 2 else base[chosen])
