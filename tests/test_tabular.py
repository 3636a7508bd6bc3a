"""tabular.file: train-only preprocessing, categories, privacy, bad cells."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tumorboard.api import DataError, Target, TumorboardWarning
from tumorboard_tabular.file import TabularFile


def table(tmp_path, frame: pl.DataFrame, name="t.csv"):
    path = tmp_path / name
    frame.write_parquet(path) if name.endswith(".parquet") else frame.write_csv(path)
    return path


def target(n):
    return Target("binary", np.arange(n) % 2, None, ("0", "1"))


def test_statistics_come_from_training_patients_only(tmp_path):
    path = table(tmp_path, pl.DataFrame({"patient_id": ["a", "b", "c", "d"], "x": [1.0, 3.0, None, 1000.0]}))
    m = TabularFile(path=path).fit(["a", "b", "c"], target(3))
    assert m.fill_[0] == 2.0  # median of a and b; d (a test patient) is never seen
    block = m.transform(["d", "c"])
    assert block.feature_names == ("x", "x__missing")
    assert block.values[1, 1] == 1.0 and block.values[0, 1] == 0.0


def test_parquet_and_text_categories(tmp_path):
    frame = pl.DataFrame({"patient_id": [f"p{i}" for i in range(40)],
                          "stage": ["I", "II", "III", "IV"] * 10, "age": np.arange(40.0)})
    path = table(tmp_path, frame, "t.parquet")
    ids = frame["patient_id"].to_list()
    block = TabularFile(path=path).fit(ids, target(40)).transform(ids)
    assert block.feature_names == ("age", "stage=I", "stage=II", "stage=III", "stage=IV")
    assert block.values[:, 1:].sum(axis=1).tolist() == [1.0] * 40


def test_identifier_like_text_never_becomes_a_feature(tmp_path):
    frame = pl.DataFrame({"patient_id": [f"p{i}" for i in range(30)],
                          "name": [f"Person {i}" for i in range(30)], "x": np.arange(30.0)})
    path = table(tmp_path, frame)
    ids = frame["patient_id"].to_list()
    with pytest.warns(TumorboardWarning, match="'name' looks like an identifier"):
        m = TabularFile(path=path).fit(ids, target(30))
    assert not any("Person" in n for n in m.transform(ids).feature_names)


def test_text_column_can_be_refused(tmp_path):
    path = table(tmp_path, pl.DataFrame({"patient_id": ["a", "b"], "stage": ["I", "II"]}))
    with pytest.raises(DataError, match=r"column 'stage' is not numeric.*options.exclude"):
        TabularFile(path=path, categorical="error").available_ids()


def test_duplicate_ids_in_a_modality_file_are_named(tmp_path):
    path = table(tmp_path, pl.DataFrame({"patient_id": ["a", "b", "a"], "x": [1, 2, 3]}))
    with pytest.raises(DataError, match=r"t.csv: 1 patient id\(s\) appear more than once.*'a' at line 2, line 4"):
        TabularFile(path=path).available_ids()


def test_unsupported_format_is_named(tmp_path):
    path = tmp_path / "t.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match=r"unsupported table format '.xlsx'"):
        TabularFile(path=path).available_ids()
