"""Built-in predictors: gradient boosting, survival models and ensembles."""

from tumorboard.api import hookimpl

from .ensemble import EnsembleModel
from .gbm import GradientBoostingModel
from .survival import CoxnetModel, GradientBoostedSurvivalModel, RandomSurvivalForestModel


@hookimpl
def register_models(register):
    for cls in (GradientBoostingModel, CoxnetModel, RandomSurvivalForestModel, GradientBoostedSurvivalModel,
                EnsembleModel):
        register(cls)
