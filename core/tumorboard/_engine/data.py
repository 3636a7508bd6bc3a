"""The values that flow between components: targets, feature blocks, cohorts, attributions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Task = Literal["binary", "multiclass", "regression", "survival"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression", "survival")


@dataclass(frozen=True)
class Target:
    """The outcome for a list of patients, aligned with the ids it travels with.

    - binary: ``values`` holds 0/1 integers; ``classes`` the two original labels.
    - multiclass: ``values`` holds class codes 0..k-1; ``classes`` the labels.
    - regression: ``values`` holds floats.
    - survival: ``values`` holds follow-up times (> 0) and ``event`` 1 for an
      observed event, 0 for censoring.
    """

    kind: Task
    values: np.ndarray
    event: np.ndarray | None = None
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in TASKS:
            raise ValueError(f"unknown task {self.kind!r}; expected one of {', '.join(TASKS)}")
        if self.kind == "survival" and (self.event is None or len(self.event) != len(self.values)):
            raise ValueError("a survival target needs an event indicator as long as its times")

    def __len__(self) -> int:
        return len(self.values)

    def take(self, index: np.ndarray | Sequence[int]) -> Target:
        """The target of a subset of patients, in the order of ``index``."""
        index = np.asarray(index, dtype=np.int64)
        event = None if self.event is None else self.event[index]
        return Target(self.kind, self.values[index], event, self.classes)

    @property
    def is_classification(self) -> bool:
        return self.kind in ("binary", "multiclass")

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.is_classification else 0

    def strata(self) -> np.ndarray:
        """Labels to stratify folds by: the class, or the event indicator for survival."""
        if self.is_classification:
            return self.values
        if self.kind == "survival":
            return self.event
        return np.zeros(len(self.values), dtype=np.int64)


@dataclass
class FeatureBlock:
    """One modality's features for a list of patients.

    ``values`` is a float32 matrix with one row per id, in the order of ``ids``.
    ``presence`` says which patients have this modality at all; the rows of
    absent patients carry no information (NaN by convention) and a fusion must
    treat them as missing. NaN inside a present row is a missing value; inf is
    never allowed.
    """

    ids: tuple[str, ...]
    values: np.ndarray
    feature_names: tuple[str, ...]
    presence: np.ndarray
    modality: str
    sources: tuple[str, ...] | None = field(default=None)
    """For fused blocks: the modality each column came from (for modality shares)."""

    def __post_init__(self) -> None:
        self.ids = tuple(str(i) for i in self.ids)
        self.values = np.asarray(self.values, dtype=np.float32)
        self.feature_names = tuple(str(n) for n in self.feature_names)
        self.presence = np.asarray(self.presence, dtype=bool)
        if self.values.ndim != 2:
            raise ValueError(f"{self.modality}: feature values must be 2-D, got shape {self.values.shape}")
        n, f = self.values.shape
        if n != len(self.ids):
            raise ValueError(
                f"{self.modality}: {n} rows of values for {len(self.ids)} ids; return one row per id"
            )
        if f != len(self.feature_names):
            raise ValueError(
                f"{self.modality}: {f} columns of values but {len(self.feature_names)} feature names"
            )
        if self.presence.shape != (n,):
            raise ValueError(
                f"{self.modality}: presence mask has shape {self.presence.shape}; expected ({n},)"
            )
        if len(set(self.feature_names)) != f:
            seen: set[str] = set()
            dupes = sorted({x for x in self.feature_names if x in seen or seen.add(x)})
            raise ValueError(f"{self.modality}: duplicated feature names {dupes[:5]!r}")
        if self.sources is not None and len(self.sources) != f:
            raise ValueError(f"{self.modality}: {len(self.sources)} sources for {f} features")

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    def take(self, index: np.ndarray | Sequence[int]) -> FeatureBlock:
        """The rows of a subset of patients, in the order of ``index``."""
        index = np.asarray(index, dtype=np.int64)
        return FeatureBlock(
            tuple(self.ids[i] for i in index),
            self.values[index],
            self.feature_names,
            self.presence[index],
            self.modality,
            self.sources,
        )


@dataclass(frozen=True)
class Cohort:
    """The outcomes table: who the patients are and what happened to them.

    ``subgroups`` maps each subgroup column to one label per patient (for the
    fairness audit); ``sites`` holds the site of each patient when the spec
    names a site column (for external validation).
    """

    ids: tuple[str, ...]
    target: Target
    subgroups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sites: tuple[str, ...] | None = None
    split: tuple[str, ...] | None = None
    """Predefined fold or split label per patient, when the spec reads one."""

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Attribution:
    """What an explainer found: how much each feature drives the model.

    ``importance`` holds one global value per feature (larger is more
    important) and ``spread`` its standard deviation where the method has one.
    ``per_patient`` optionally holds a (patients x features) matrix of signed
    contributions for the patients in ``ids``; with additive methods (SHAP)
    each row plus ``baseline`` is the model's output on the ``units`` scale.
    ``images`` optionally holds per-patient image maps (saliency): a dict
    ``modality -> patient id -> {"image", "mask", "saliency"}`` of 2-D arrays
    (the slice to show) plus a scalar ``"inside"`` share.
    """

    method: str
    feature_names: tuple[str, ...]
    importance: np.ndarray
    spread: np.ndarray | None = None
    ids: tuple[str, ...] | None = None
    per_patient: np.ndarray | None = None
    sources: tuple[str, ...] | None = None
    baseline: float | None = None
    units: str | None = None
    images: dict[str, dict[str, dict[str, np.ndarray]]] | None = None

    def __post_init__(self) -> None:
        self.importance = np.asarray(self.importance, dtype=np.float64)
        if self.importance.shape != (len(self.feature_names),):
            raise ValueError(
                f"{self.method}: {self.importance.shape} importances for "
                f"{len(self.feature_names)} features"
            )
        if self.per_patient is not None:
            if self.ids is None or self.per_patient.shape != (len(self.ids), len(self.feature_names)):
                raise ValueError(f"{self.method}: per-patient attributions must be (ids x features)")
