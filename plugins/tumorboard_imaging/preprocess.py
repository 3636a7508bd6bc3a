"""Image preprocessing through SimpleITK — resampling, intensity window, crop around the mask — with a cache.

The cache key is the SHA-256 of the input files plus the parameters, so a
second run (or another fold) skips the work; arrays are stored uncompressed
(.npy), which is many times faster to write and read than compressed NIfTI.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .io import check_array_geometry, check_geometry, mask_voxels, read_image, read_nifti_array, require_3d
from .radiomics import bounding_box

INTERPOLATORS = {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline, "nearest": sitk.sitkNearestNeighbor}


@dataclass(frozen=True)
class Preparation:
    """How an image and its mask are prepared before features are computed."""

    spacing: tuple[float, float, float] | None = None  # (x, y, z) mm; None keeps the image's own
    interpolator: str = "linear"
    window: tuple[float, float] | None = None  # intensity limits (HU for CT)
    crop_margin_mm: float | None = None  # crop to the mask's bounding box plus this margin
    label: int | None = None
    allow_empty: bool = False  # an empty mask is a region too (a follow-up scan after a complete response)


def resample(image: sitk.Image, spacing: tuple[float, float, float], interpolator: str) -> sitk.Image:
    """Onto a grid of ``spacing`` covering the same physical extent, same origin and direction."""
    old_size, old_spacing = np.array(image.GetSize()), np.array(image.GetSpacing())
    size = np.maximum(np.round(old_size * old_spacing / np.array(spacing)).astype(int), 1)
    return sitk.Resample(image, [int(s) for s in size], sitk.Transform(), INTERPOLATORS[interpolator],
                         image.GetOrigin(), tuple(float(s) for s in spacing), image.GetDirection(), 0.0,
                         image.GetPixelID())


def _digest(paths: list[Path], prep: Preparation) -> str:
    h = hashlib.sha256(json.dumps(asdict(prep), sort_keys=True).encode())
    for path in paths:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                h.update(f.name.encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:32]


def prepare(image_path: Path, mask_path: Path, prep: Preparation,
            cache: Path | None = None) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """(image array z-y-x float32, region bool, spacing z-y-x) for one image and mask, cached when asked."""
    key = _digest([image_path, mask_path], prep) if cache is not None else None
    if key is not None and (cache / f"{key}.npz").exists():
        with np.load(cache / f"{key}.npz", allow_pickle=False) as stored:
            return stored["image"], stored["region"], tuple(stored["spacing"].tolist())
    array, region, spacing_zyx = _read_cropped(image_path, mask_path, prep)
    if not region.any() and not prep.allow_empty:
        raise_empty(mask_path, prep)
    if prep.window is not None:
        array = np.clip(array, *prep.window)
    if key is not None:
        _store(cache, key, array, region, spacing_zyx)
    return array, region, spacing_zyx


def _read_cropped(image_path: Path, mask_path: Path, prep: Preparation):
    """(image array float32, region, spacing z-y-x), checked, resampled when ``prep`` asks, cropped.

    Without resampling, two plain NIfTI files are read through nibabel (about
    three times faster than ITK on compressed files); anything else, or any
    problem, goes through SimpleITK, whose path checks and names it. The box
    is cut before the conversion to float32: a tumour's box is a small part of
    a whole CT.
    """
    if prep.spacing is None:
        image, mask = read_nifti_array(image_path), read_nifti_array(mask_path)
        if image is not None and mask is not None:
            check_array_geometry(image, mask, image_path, mask_path)
            region = mask_voxels(mask[0], mask_path, prep.label, prep.allow_empty)
            box = _crop_box(region, np.array(image[1]), prep.crop_margin_mm)
            return image[0][box].astype(np.float32), region[box], image[1]
    itk, mask_itk = read_image(image_path), read_image(mask_path)
    require_3d(itk, image_path)
    check_geometry(itk, mask_itk, image_path, mask_path)
    region = mask_voxels(mask_itk, mask_path, prep.label, prep.allow_empty)
    if prep.spacing is not None:
        region_image = sitk.GetImageFromArray(region.astype(np.uint8))
        region_image.CopyInformation(mask_itk)
        itk = resample(sitk.Cast(itk, sitk.sitkFloat32), prep.spacing, prep.interpolator)
        region = sitk.GetArrayFromImage(resample(region_image, prep.spacing, "nearest")) > 0  # labels never interpolated
    spacing_zyx = tuple(float(s) for s in itk.GetSpacing()[::-1])
    box = _crop_box(region, np.array(spacing_zyx), prep.crop_margin_mm)
    # a view into ITK's buffer, cut and copied while ``itk`` is alive
    return sitk.GetArrayViewFromImage(itk)[box].astype(np.float32), region[box], spacing_zyx


def _store(cache: Path, key: str, array: np.ndarray, region: np.ndarray, spacing_zyx: tuple) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{key}.npz"
    np.savez(partial, image=array.astype(np.float32), region=region, spacing=np.array(spacing_zyx))
    partial.replace(cache / f"{key}.npz")  # never a half-written cache entry


def _crop_box(region: np.ndarray, spacing_zyx: np.ndarray, margin_mm: float | None) -> tuple[slice, ...]:
    """The region's bounding box grown by ``margin_mm`` (the whole array when None or no region)."""
    if margin_mm is None:
        return tuple(slice(None) for _ in region.shape)
    return bounding_box(region, np.ceil(margin_mm / spacing_zyx).astype(int))


def raise_empty(mask_path: Path, prep: Preparation) -> None:
    from tumorboard.api import DataError

    raise DataError(f"{mask_path}: the region vanished when resampled to spacing {prep.spacing}; "
                    "use a finer spacing (the region is smaller than one voxel of the new grid)")


def unusable(array: np.ndarray, region: np.ndarray | None = None) -> str | None:
    """Why a prepared image cannot describe its patient (None when it can): no finite voxel, NaN or inf
    inside the region, or one value everywhere (a blank export). Such a patient is marked absent for
    the modality, never present with extreme features."""
    finite = np.isfinite(array)
    if not finite.any():
        return "holds no finite voxel"
    if region is not None and not finite[region].all():
        return f"holds {int((~finite[region]).sum())} NaN or infinite voxel(s) inside the region"
    if float(np.ptp(array[finite])) == 0.0:
        return "is constant (one value everywhere)"
    return None


def warn_unusable(modality: str, found: list[tuple[Path, str]]) -> None:
    """One warning per transform for the images marked absent, with the count and an example."""
    if not found:
        return
    import warnings

    from tumorboard.api import TumorboardWarning

    path, why = found[0]
    warnings.warn(f"{modality}: {len(found)} image(s) are unusable after preprocessing and those patients are marked "
                  f"absent for this modality (e.g. {path} {why})", TumorboardWarning, stacklevel=3)
