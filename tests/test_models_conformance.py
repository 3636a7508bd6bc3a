"""The predictors issue's models pass the testing kit (small settings keep it quick)."""

from __future__ import annotations

from tumorboard.testing import parametrize_with_checks
from tumorboard_models.ensemble import EnsembleModel
from tumorboard_models.gbm import GradientBoostingModel
from tumorboard_models.survival import CoxnetModel, GradientBoostedSurvivalModel, RandomSurvivalForestModel

MODELS = [
    GradientBoostingModel(max_iter=50, early_stopping=False, min_samples_leaf=5),
    GradientBoostingModel(max_iter=50, early_stopping=False, min_samples_leaf=5, calibration="isotonic"),
    CoxnetModel(n_alphas=10),
    RandomSurvivalForestModel(n_estimators=25, min_samples_leaf=5),
    GradientBoostedSurvivalModel(n_estimators=40),
    EnsembleModel(models=[{"plugin": "model.logistic"}, {"plugin": "model.gbm", "options": {"max_iter": 30}}]),
    EnsembleModel(models=[{"plugin": "model.logistic"}, {"plugin": "model.gbm", "options": {"max_iter": 30}}],
                  method="stack", stack_folds=3),
    EnsembleModel(models=[{"plugin": "model.coxnet", "options": {"n_alphas": 5}},
                          {"plugin": "model.rsf", "options": {"n_estimators": 15}}]),
]


@parametrize_with_checks(MODELS)
def test_models_follow_the_component_contract(component, check):
    check(component)
