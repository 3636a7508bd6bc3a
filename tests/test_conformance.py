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


def test_the_kit_runs_every_task_a_component_declares():
    """A model that declares regression but only fits binary labels passes on binary data and fails on
    regression data, and each failure names the task (the kit used to test the first declared task only)."""
    import numpy as np

    from tumorboard.api import Model

    class BinaryOnly(Model):
        """Scores the first feature; claims regression too but only fits 0/1 labels."""

        name = "model.binary_only"
        tasks = frozenset({"binary", "regression"})

        def fit(self, X, y):
            if len(X.ids) != len(y):
                raise ValueError(f"{len(X.ids)} rows but {len(y)} targets")
            if not set(np.unique(y.values)) <= {0, 1}:
                raise ValueError("labels must be 0 or 1")
            self.sign_ = float(np.sign(np.corrcoef(np.nan_to_num(X.values[:, 0]), y.values)[0, 1]) or 1.0)
            return self

        def predict(self, X):
            self.check_is_fitted()
            if X.values.shape[1] < 1:
                raise ValueError("no features")
            return 1 / (1 + np.exp(-self.sign_ * np.nan_to_num(X.values[:, 0]) * 50))  # a near 0/1 step

    with pytest.raises(ConformanceError) as info:
        check_component(BinaryOnly())
    failures = str(info.value).splitlines()
    assert failures and all("[regression]" in line for line in failures)


def test_a_component_without_tasks_is_refused_at_registration():
    from tumorboard.api import Model
    from tumorboard._engine.plugins import component_problems

    class NoTasks(Model):
        """Declares nothing."""

        name = "model.no_tasks"

        def fit(self, X, y):
            return self

        def predict(self, X):
            return None

    assert any("declare the run tasks it supports" in p for p in component_problems(NoTasks, "model"))
