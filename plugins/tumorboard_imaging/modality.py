"""``imaging.radiomics``: radiomic features of each patient's image and mask, through SimpleITK."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

import numpy as np
import polars as pl
from pydantic import Field, PositiveFloat, model_validator

from tumorboard.api import (
    Options,
    ComponentError,
    DataError,
    FeatureBlock,
    InputPath,
    Modality,
    Target,
    apply_numeric,
    fit_numeric,
    parallel_map,
    read_table,
)

from .preprocess import Preparation, prepare, unusable, warn_unusable
from .radiomics import FAMILIES, region_features



class ImagingInputs(Options):
    """Where each patient's image and mask are: templates, or a manifest table."""
    folder: InputPath | None = Field(None, description="Folder that template and manifest paths are relative to "
                                     "(default: the manifest's folder; for templates, the working directory). "
                                     "Write folder = \".\" for the spec's folder.")
    image: str | None = Field(None, description="Image path template, e.g. 'imaging/ct_baseline/{patient_id}.nii.gz' "
                                                "(a folder means a DICOM series).")
    mask: str | None = Field(None, description="Mask path template, e.g. 'imaging/mask_baseline/{patient_id}.nii.gz'.")
    manifest: InputPath | None = Field(None, description="Table with columns patient_id, image, mask (and time_point or timepoint).")
    time_point: str | None = Field(None, description="With a manifest: use only rows of this time point.")

    @model_validator(mode="after")
    def _one_way(self):
        if (self.manifest is None) == (self.image is None):
            raise ValueError("give either manifest, or image (and mask) templates")
        return self


class MeasuredFeatures(Modality):
    """A modality whose features are measured per patient (``_matrix``: names, values, presence), then
    imputed and standardised with statistics of the training patients only."""

    def _matrix(self, ids: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _nothing_measured(self, n: int) -> str:
        return f"{self.name}: none of the {n} training patients has data"

    def fit(self, ids: Sequence[str], y: Target) -> Self:
        if len(ids) != len(y):
            raise ComponentError(f"{self.name}: fit() got {len(ids)} ids but {len(y)} target values")
        names, values, present = self._matrix(ids)
        if not present.any():
            raise DataError(self._nothing_measured(len(ids)))
        stats = fit_numeric(values[present])
        self.feature_names_ = names
        self.fill_, self.mean_, self.scale_ = stats.fill, stats.mean, stats.scale
        self.low_, self.high_ = stats.low, stats.high
        return self

    def transform(self, ids: Sequence[str]) -> FeatureBlock:
        self.check_is_fitted()
        names, values, present = self._matrix(ids)
        by_name = {n: k for k, n in enumerate(names)}
        aligned = np.full((len(ids), len(self.feature_names_)), np.nan)
        for j, name in enumerate(self.feature_names_):
            if name in by_name:
                aligned[:, j] = values[:, by_name[name]]
        out = apply_numeric(aligned, self.low_, self.high_, self.fill_, self.mean_, self.scale_)
        out[~present] = np.nan
        return FeatureBlock(tuple(map(str, ids)), out, tuple(self.feature_names_), present, self.name)


class ImagingSource(Modality):
    """Shared by the imaging components: where each patient's image and mask are."""

    Options = ImagingInputs

    def _paths(self) -> dict[str, tuple[Path, Path | None]]:
        o = self.options
        if o.manifest is not None:
            return _manifest(Path(o.manifest), o.time_point, Path(o.folder) if o.folder is not None else None)
        return {}

    def _locate(self, patient: str) -> tuple[Path, Path | None] | None:
        o = self.options
        if o.manifest is not None:
            return self._paths().get(patient)
        base = Path(o.folder) if o.folder is not None else Path(".")
        image = base / o.image.format(patient_id=patient)  # type: ignore[union-attr]
        mask = base / o.mask.format(patient_id=patient) if o.mask else None
        return (image, mask) if image.exists() else None

    def available_ids(self) -> set[str] | None:
        if self.options.manifest is not None:
            return set(self._paths())
        return None  # templates: unknowable without a list of ids


class ImagingRadiomics(ImagingSource, MeasuredFeatures):
    """Radiomic features from image + mask: shape, first-order, GLCM, GLRLM, GLSZM, GLDM and NGTDM (IBSI definitions).

    Images are read through SimpleITK (DICOM series, NIfTI, NRRD, MHA),
    checked against their masks' geometry, optionally resampled (linear or
    B-spline; masks nearest-neighbour), windowed and cropped; prepared arrays
    are cached by input hash and parameters. Intensities are discretised with
    a fixed ``bin_width``. Features are then imputed and standardised with
    training statistics only. Patients without an image are marked absent.
    """

    name = "imaging.radiomics"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})

    class Options(ImagingInputs):
        label: int | None = Field(None, description="Mask label of the region (default: the 1s of a 0/1 mask).")
        families: list[Literal["shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"]] = Field(
            list(FAMILIES), description="Feature families to compute.")
        bin_width: PositiveFloat = Field(25.0, description="Fixed bin width for discretised features (intensity units).")
        shift: float = Field(0.0, description="Added to intensities in energy-type features (pyradiomics' voxelArrayShift).")
        spacing: tuple[PositiveFloat, PositiveFloat, PositiveFloat] | None = Field(
            None, description="Resample to this (x, y, z) spacing in mm; default: keep the image's.")
        interpolator: Literal["linear", "bspline"] = Field("linear", description="Image interpolator for resampling.")
        window: tuple[float, float] | None = Field(None, description="Clip intensities to [low, high] (HU for CT).")
        cache: Path | None = Field(Path(".tumorboard-cache/imaging"), description="Cache of prepared arrays (None: no cache).")

    def _matrix(self, ids: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        o = self.options
        # cropped to the region: no family looks beyond the one-voxel background border it adds itself
        prep = Preparation(o.spacing, o.interpolator, o.window, 0.0, o.label)
        located = [self._locate(str(i)) for i in ids]
        for found in located:
            if found is not None and found[1] is None:
                raise DataError(f"{self.name}: radiomics needs a mask for {found[0]}; give a mask template or a "
                                "mask column")
        tasks = [(found[0], found[1], prep, o.cache, tuple(o.families), o.bin_width, o.shift)
                 for found in located if found is not None]
        # one patient per task: on the run's workers when it has several (results in this order)
        done = iter(parallel_map(_patient_features, tasks))
        rows: list[dict[str, float] | None] = []
        bad: list = []
        for found in located:
            features, why = next(done) if found is not None else (None, None)
            if why is not None:
                bad.append((found[0], why))  # type: ignore[index]
            rows.append(features)
        warn_unusable(self.name, bad)
        names = sorted({k for r in rows if r for k in r})
        values = np.array([[r.get(n, np.nan) for n in names] if r else [np.nan] * len(names) for r in rows], dtype=np.float64)
        return names, values.reshape(len(ids), len(names)), np.array([r is not None for r in rows])

    def _nothing_measured(self, n: int) -> str:
        return f"{self.name}: none of the {n} training patients has an image"


    def raw_features(self, ids: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Unscaled feature values (names, matrix, presence): for reference checks and reports."""
        return self._matrix(ids)


@functools.lru_cache(maxsize=8)
def _patient_features(image: Path, mask: Path, prep: Preparation, cache: Path | None, families: tuple[str, ...],
                      bin_width: float, shift: float) -> tuple[dict[str, float] | None, str | None]:
    """One patient's radiomic features, or why its image is unusable (a task on the run's executor)."""
    array, region, spacing = prepare(image, mask, prep, cache)
    why = unusable(array, region)
    if why is not None:
        return None, why
    return region_features(array, region, spacing, families, bin_width, shift), None


def _manifest_cached(path: Path, mtime: int, time_point: str | None, folder: Path | None) -> dict[str, tuple[Path, Path]]:
    table = read_table(path, "patient_id")
    if "image" not in table.columns:
        raise DataError(f"{path}: an imaging manifest needs columns patient_id, image (and mask); it has {table.columns}")
    if time_point is not None:
        column = next((c for c in ("time_point", "timepoint") if c in table.columns), None)
        if column is None:
            raise DataError(f"{path}: time_point = {time_point!r} was asked but the manifest has no time_point column")
        table = table.filter(pl.col(column).cast(pl.String) == time_point)
    if table["patient_id"].is_duplicated().any():
        dup = table.filter(table["patient_id"].is_duplicated())["patient_id"][0]
        raise DataError(f"{path}: patient {dup!r} has more than one row; set time_point to pick one scan per patient")
    base = folder if folder is not None else path.parent
    masks = table["mask"].to_list() if "mask" in table.columns else [None] * table.height
    return {pid: (base / image, base / mask if mask else None)
            for pid, image, mask in zip(table["patient_id"].to_list(), table["image"].to_list(), masks, strict=True)}


def _manifest(path: Path, time_point: str | None, folder: Path | None) -> dict[str, tuple[Path, Path]]:
    return _manifest_cached(path, path.stat().st_mtime_ns, time_point, folder)
