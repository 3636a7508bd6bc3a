"""Models for the search tests, loaded by name from a spec: an honest logistic regression, a model
that answers from a file of labels it should never see (the planted leak), and noise."""

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from tumorboard.api import InputPath, hookimpl
from tumorboard_linear.logistic import LogisticModel


class Peeking(LogisticModel):
    """mode = honest: logistic regression. oracle: the label from `answers` for the patients listed
    there (a fold's test patients), coin flips for everyone else. noise: coin flips for everyone."""

    name = "model.peeking"

    class Options(LogisticModel.Options):
        mode: Literal["honest", "oracle", "noise"] = "honest"
        answers: InputPath | None = Field(None, description="CSV of patient_id, label.")

    def predict(self, X):
        rng = np.random.default_rng([int(i[2:]) for i in X.ids])  # a coin per list of patients, reproducible
        coins = rng.random(len(X.ids))
        if self.options.mode == "honest":
            return super().predict(X)
        if self.options.mode == "noise":
            return coins
        table = pl.read_csv(Path(self.options.answers), schema_overrides={"patient_id": pl.String})
        known = dict(zip(table["patient_id"], table["label"], strict=True))
        return np.array([float(known[i]) if i in known else c for i, c in zip(X.ids, coins, strict=True)])


@hookimpl
def register_models(register):
    register(Peeking)
