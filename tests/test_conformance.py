"""Every built-in passes the testing kit, and the kit catches components that break the contract."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from tumorboard.api import FeatureBlock
from tumorboard_synth.quickstart import write_quickstart
from tumorboard.testing import ConformanceError, check_component, parametrize_with_checks
from tumorboard_explain.permutation import PermutationExplainer
from tumorboard_fusion.concat import ConcatFusion
from tumorboard_linear.logistic import LogisticModel
from tumorboard_tabular.file import TabularFile

# components are built at collection time, so their data lives in a fresh temp folder
DATA = Path(tempfile.mkdtemp(prefix="tumorboard-kit-"))
write_quickstart(DATA, patients=120, seed=5)

BUILTINS = [
    TabularFile(path=DATA / "labs.csv"),
    ConcatFusion(),
    LogisticModel(C=0.5),
    PermutationExplainer(n_repeats=3),
]


@parametrize_with_checks(BUILTINS)
def test_builtins_follow_the_component_contract(component, check):
    check(component)


class LeakyTabular(TabularFile):
    """Learns its fill values from every patient in the file, test patients included."""

    name = "tabular.leaky"

    def fit(self, ids, y):
        super().fit(self._load().ids, y.take(np.zeros(len(self._load().ids), dtype=int)))
        return self


class WrongRows(LogisticModel):
    """Predicts one row too few."""

    name = "model.wrong_rows"

    def predict(self, X):
        return super().predict(X)[:-1]


class IgnoresAbsence(ConcatFusion):
    """Uses absent rows' values as if they were data."""

    name = "fusion.ignores_absence"

    def transform(self, blocks):
        fixed = [FeatureBlock(b.ids, b.values, b.feature_names, np.ones(len(b.ids), bool), b.modality) for b in blocks]
        return super().transform(fixed)


@pytest.mark.parametrize(
    ("component", "failing_check"),
    [
        (LeakyTabular(path=DATA / "labs.csv"), "check_fit_uses_train_ids_only"),
        (WrongRows(), "check_one_row_per_id"),
        (IgnoresAbsence(), "check_absent_rows_ignored"),
    ],
    ids=["leaky-modality", "wrong-rows", "ignores-absence"],
)
def test_kit_catches_a_broken_component(component, failing_check):
    with pytest.raises(ConformanceError) as info:
        check_component(component)
    assert failing_check in str(info.value)


def test_known_limitation_is_an_expected_failure_that_must_fail():
    class Declared(WrongRows):
        """Predicts one row too few, and says so."""

        name = "model.declared"
        known_limitations = {
            "check_one_row_per_id": "drops the last patient on purpose",
            "check_model_learns_planted_signal": "cannot be scored without a row per patient",
        }

    check_component(Declared())  # the declared failure is expected: no error

    class Stale(LogisticModel):
        """Declares a limitation it does not have."""

        name = "model.stale"
        known_limitations = {"check_one_row_per_id": "no longer true"}

    with pytest.raises(ConformanceError, match="passes, but is listed in known_limitations"):
        check_component(Stale())
