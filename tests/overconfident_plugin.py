"""A deliberately overconfident model, loaded by name from a spec in the calibration test."""

import numpy as np
from scipy.special import expit, logit

from tumorboard.api import hookimpl
from tumorboard_linear.logistic import LogisticModel


class Overconfident(LogisticModel):
    """Logistic regression whose log-odds are multiplied by four (too sure of itself)."""

    name = "model.overconfident"

    def predict(self, X):
        return expit(4 * logit(np.clip(super().predict(X), 1e-9, 1 - 1e-9)))


@hookimpl
def register_models(register):
    register(Overconfident)
