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

INTERPOLATORS = {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline, "nearest": sitk.sitkNearestNeighbor}


@dataclass(frozen=True)
class Preparation:
    """How an image and its mask are prepared before features are computed."""

    spacing: tuple[float, float, float] | None = None  # (x, y, z) mm; None keeps the image's own
    interpolator: str = "linear"
    window: tuple[float, float] | None = None  # intensity limits (HU for CT)
    crop_margin_mm: float | None = None  # crop to the mask's bounding box plus this margin
    label: int | None = None


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
    fast = _prepare_nifti(image_path, mask_path, prep) if prep.spacing is None else None
    if fast is not None:
        array, region, spacing_zyx = fast
        if key is not None:
            _store(cache, key, array, region, spacing_zyx)
        return array, region, spacing_zyx
    image, mask = read_image(image_path), read_image(mask_path)
    require_3d(image, image_path)
    check_geometry(image, mask, image_path, mask_path)
    region = mask_voxels(mask, mask_path, prep.label)
    if prep.spacing is None:
        # no resampling: stay in numpy and convert only the cropped box (a whole CT is 100x larger)
        box = _crop_box(region, np.array(image.GetSpacing()[::-1]), prep.crop_margin_mm)
        array = sitk.GetArrayViewFromImage(image)[box].astype(np.float32)
        region = region[box]
    else:
        region_image = sitk.GetImageFromArray(region.astype(np.uint8))
        region_image.CopyInformation(mask)
        image = resample(sitk.Cast(image, sitk.sitkFloat32), prep.spacing, prep.interpolator)
        region_image = resample(region_image, prep.spacing, "nearest")  # labels are never interpolated
        array = sitk.GetArrayFromImage(image)
        region = sitk.GetArrayFromImage(region_image) > 0
        box = _crop_box(region, np.array(image.GetSpacing()[::-1]), prep.crop_margin_mm)
        array, region = array[box], region[box]
    if not region.any():
        raise_empty(mask_path, prep)
    if prep.window is not None:
        array = np.clip(array, *prep.window)
    spacing_zyx = tuple(float(s) for s in image.GetSpacing()[::-1])
    if key is not None:
        _store(cache, key, array, region, spacing_zyx)
    return array.astype(np.float32), region, spacing_zyx


def _prepare_nifti(image_path: Path, mask_path: Path, prep: Preparation):
    """The same preparation without resampling, for two plain NIfTI files read through nibabel;
    None when either is not one (the SimpleITK path then reads and checks them)."""
    image, mask = read_nifti_array(image_path), read_nifti_array(mask_path)
    if image is None or mask is None:
        return None
    check_array_geometry(image, mask, image_path, mask_path)
    region = mask_voxels(mask[0], mask_path, prep.label)
    box = _crop_box(region, np.array(image[1]), prep.crop_margin_mm)
    array, region = image[0][box].astype(np.float32), region[box]
    if prep.window is not None:
        array = np.clip(array, *prep.window)
    return array, region, image[1]


def _store(cache: Path, key: str, array: np.ndarray, region: np.ndarray, spacing_zyx: tuple) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{key}.npz"
    np.savez(partial, image=array.astype(np.float32), region=region, spacing=np.array(spacing_zyx))
    partial.replace(cache / f"{key}.npz")  # never a half-written cache entry


def _crop_box(region: np.ndarray, spacing_zyx: np.ndarray, margin_mm: float | None) -> tuple[slice, ...]:
    """The region's bounding box grown by ``margin_mm`` (the whole array when None or no region)."""
    if margin_mm is None or not region.any():
        return tuple(slice(None) for _ in region.shape)
    margin = np.ceil(margin_mm / spacing_zyx).astype(int)
    box = []
    for axis in range(region.ndim):
        hit = np.flatnonzero(region.any(axis=tuple(a for a in range(region.ndim) if a != axis)))
        box.append(slice(max(int(hit[0]) - margin[axis], 0), min(int(hit[-1]) + margin[axis] + 1, region.shape[axis])))
    return tuple(box)


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
