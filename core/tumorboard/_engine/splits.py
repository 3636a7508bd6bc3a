"""Train/test splits by patient: stratified k-fold, holdout, by site, or predefined."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.model_selection import (
    RepeatedKFold,
    RepeatedStratifiedKFold,
    train_test_split,
)

from .data import Cohort
from .errors import DataError
from .tables import read_table, table_columns


@dataclass(frozen=True)
class Fold:
    """One fit: training patients, and the patients scored by it (by index into the cohort)."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    """Further scored sets (a predefined validation set), scored but not in overall metrics."""
    label: str = ""


# MEDS datasets' metadata/subject_splits.parquet says train / tuning / held_out
SPLIT_WORDS = {"train": "train", "training": "train", "validation": "validation", "val": "validation",
               "valid": "validation", "tuning": "validation", "test": "test", "testing": "test", "held_out": "test"}


def _check_strata(strata: np.ndarray, names: list[str], folds: int, what: str,
                  setting: str = "evaluation.folds") -> None:
    counts = Counter(strata.tolist())
    for value, count in sorted(counts.items()):
        if count < folds:
            label = names[value] if value < len(names) else str(value)
            raise DataError(
                f"{what} {label!r} has {count} patient(s), fewer than {setting} = {folds}; "
                f"every fold needs one: lower {setting} to {max(2, count)} or gather more patients"
            )


def kfold(cohort: Cohort, folds: int, repeats: int, seed: int, setting: str = "evaluation.folds") -> list[Fold]:
    y = cohort.target
    n = len(cohort)
    if folds > n:
        raise DataError(f"{setting} = {folds} but the cohort has {n} patients")
    index = np.arange(n)
    if y.kind in ("binary", "multiclass", "survival"):
        strata = y.strata()
        names = list(y.classes) if y.is_classification else ["censored", "event"]
        what = "class" if y.is_classification else "event group"
        _check_strata(strata, names, folds, what, setting)
        splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
        pairs = splitter.split(index, strata)
    else:
        pairs = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed).split(index)
    return [
        Fold(k // folds, k % folds, np.sort(train), np.sort(test), label=f"repeat {k // folds + 1} fold {k % folds + 1}")
        for k, (train, test) in enumerate(pairs)
    ]


def inner_folds(cohort: Cohort, train: np.ndarray, folds: int, seed: int, where: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold of some training patients (indices into the cohort), stratified as the outer folds are:
    (inner training, inner test) index pairs into the cohort. Only ``train`` is ever looked at."""
    sub = Cohort(tuple(cohort.ids[i] for i in train), cohort.target.take(train))
    try:
        inner = kfold(sub, folds, 1, seed, setting="search.inner_folds")
    except DataError as err:
        raise DataError(f"{where}: {err}") from None
    return [(train[f.train], train[f.test]) for f in inner]


def holdout(cohort: Cohort, fraction: float, seed: int) -> list[Fold]:
    y = cohort.target
    strata = y.strata() if y.kind != "regression" else None
    if strata is not None:
        _check_strata(strata, list(y.classes) or ["censored", "event"], 2, "class")
    train, test = train_test_split(
        np.arange(len(cohort)), test_size=fraction, random_state=seed, stratify=strata
    )
    return [Fold(0, 0, np.sort(train), np.sort(test), label="holdout")]


def by_site(cohort: Cohort, test_sites: list[str]) -> list[Fold]:
    if cohort.sites is None:
        raise DataError("evaluation.strategy = 'site' needs cohort.site to name the site column")
    sites = np.array(cohort.sites)
    known = sorted(set(cohort.sites))
    unknown = [s for s in test_sites if s not in known]
    if unknown:
        raise DataError(f"evaluation.test_sites names unknown site(s) {unknown!r}; sites are {known!r}")
    if len(known) < 2:
        raise DataError(f"external validation needs at least 2 sites; the cohort has {known!r}")
    groups = [test_sites] if test_sites else [[s] for s in known]
    folds = []
    for k, held in enumerate(groups):
        test = np.flatnonzero(np.isin(sites, held))
        train = np.flatnonzero(~np.isin(sites, held))
        folds.append(Fold(0, k, train, test, label=f"test site {', '.join(held)}"))
    return folds


def read_split_file(path: Path, cohort: Cohort, id_column: str) -> tuple[str, ...]:
    """Each cohort patient's fold or split label from a file keyed by the cohort's id column (or by
    ``subject_id``, as a MEDS dataset's subject_splits.parquet is, where the cohort's ids are subject ids)."""
    columns = table_columns(path)
    if id_column not in columns and "subject_id" in columns:
        id_column = "subject_id"
    frame = read_table(path, id_column)
    column = next((c for c in ("fold", "split") if c in frame.columns), None)
    if column is None:
        raise DataError(f"{path}: a split file needs a 'fold' or 'split' column; columns are {frame.columns}")
    mapping = dict(zip(frame[id_column].to_list(), frame[column].cast(pl.String).to_list(), strict=True))
    missing = [i for i in cohort.ids if i not in mapping]
    if missing:
        raise DataError(
            f"{path}: {len(missing)} cohort patient(s) have no fold, e.g. {missing[:3]!r}; "
            "give every patient of the outcomes table a fold or split"
        )
    return tuple(mapping[i] for i in cohort.ids)


def predefined(labels: tuple[str, ...], source: str) -> list[Fold]:
    words = {SPLIT_WORDS.get(v.strip().lower()) for v in labels}
    if None not in words:
        if "train" not in words or "test" not in words:
            raise DataError(f"{source}: a predefined split needs both 'train' and 'test' patients")
        norm = np.array([SPLIT_WORDS[v.strip().lower()] for v in labels])
        extra = {"validation": np.flatnonzero(norm == "validation")} if "validation" in words else {}
        return [Fold(0, 0, np.flatnonzero(norm == "train"), np.flatnonzero(norm == "test"), extra, "predefined split")]
    try:
        numbers = np.array([int(float(v)) for v in labels])
    except ValueError:
        bad = next(v for v in labels if SPLIT_WORDS.get(v.strip().lower()) is None)
        raise DataError(
            f"{source}: split value {bad!r} is neither a fold number nor train/validation/test"
        ) from None
    folds = sorted(set(numbers.tolist()))
    if len(folds) < 2:
        raise DataError(f"{source}: predefined folds need at least 2 distinct values; found {folds}")
    return [
        Fold(0, k, np.flatnonzero(numbers != f), np.flatnonzero(numbers == f), label=f"fold {f}")
        for k, f in enumerate(folds)
    ]


def make_folds(cohort: Cohort, evaluation, seed: int, split_labels: tuple[str, ...] | None, source: str) -> list[Fold]:
    """The folds an ``[evaluation]`` section asks for."""
    strategy = evaluation.strategy
    if strategy == "kfold":
        return kfold(cohort, evaluation.folds, evaluation.repeats, seed)
    if strategy == "holdout":
        return holdout(cohort, evaluation.holdout, seed)
    if strategy == "site":
        return by_site(cohort, evaluation.test_sites)
    if split_labels is None:
        raise DataError("evaluation.strategy = 'predefined' needs evaluation.split_column or evaluation.split_file")
    return predefined(split_labels, source)
