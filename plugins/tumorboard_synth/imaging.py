"""CT-like chest volumes with planted tumours, their masks, and follow-up scans.

Each patient's anatomy and tumour shape come from a generator seeded by the
patient alone, so the follow-up scan shows the same tumour, scaled by the
planted response.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

HU = {"air": -1000.0, "lung": -850.0, "fat": -100.0, "soft": 40.0, "bone": 700.0}


def _uid(*parts: object) -> str:
    # a DICOM UID under the 2.25 (UUID-derived) root, deterministic in its parts
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:16]
    return "2.25." + str(int.from_bytes(digest, "big"))


def _shape_field(rng: np.random.Generator, directions: np.ndarray) -> np.ndarray:
    """A smooth random function on the sphere (about unit SD): how far the surface bulges."""
    f = np.zeros(directions.shape[1:])
    for _ in range(4):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        freq = rng.choice([2.0, 3.0])
        f += np.cos(freq * np.pi * np.tensordot(axis, directions, axes=1) + rng.uniform(0, 2 * np.pi))
    return f / 1.4


def render(
    seed: int,
    patient: int,
    volume_mm3: float,
    heterogeneity: float,
    irregularity: float,
    size: tuple[int, int, int],
    spacing: tuple[float, float, float],
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One scan: (HU volume int16, mask uint8), arrays in (z, y, x) order.

    ``scale`` multiplies the tumour volume (follow-up scans); anatomy, lesion
    positions, shapes and texture stay those of the patient.
    """
    rng = np.random.default_rng([seed, 5_000_000, patient])
    nx, ny, nz = size
    sx, sy, sz = spacing
    z, y, x = np.meshgrid((np.arange(nz) - nz / 2 + 0.5) * sz, (np.arange(ny) - ny / 2 + 0.5) * sy,
                          (np.arange(nx) - nx / 2 + 0.5) * sx, indexing="ij")
    fx, fy, fz = nx * sx, ny * sy, nz * sz
    img = np.full((nz, ny, nx), HU["air"])
    body = (x / (0.47 * fx)) ** 2 + (y / (0.42 * fy)) ** 2 <= 1
    inner = (x / (0.47 * fx - 2.5)) ** 2 + (y / (0.42 * fy - 2.5)) ** 2 <= 1
    img[body] = HU["fat"]
    img[inner] = HU["soft"]
    # the lungs fill most of the chest either side of a narrow mediastinum, as on a real axial slice
    lung_cx, lung_cy, lung_rx, lung_ry = 0.25 * fx, -0.03 * fy, 0.2 * fx, 0.32 * fy
    for side in (-1, 1):
        lung = ((x - side * lung_cx) / lung_rx) ** 2 + ((y - lung_cy) / lung_ry) ** 2 <= 1
        img[lung & inner] = HU["lung"]
    spine = (x**2 + (y - 0.33 * fy) ** 2) <= (0.06 * fx) ** 2
    img[spine] = HU["bone"]

    # lesions: a primary and, for one patient in five, a smaller second one, each centred in a lung
    # (primary lung cancers grow in the parenchyma, so air surrounds most of the tumour)
    radius = (3 * volume_mm3 * scale / (4 * np.pi)) ** (1 / 3)
    lesions = [(radius, 1.0)]
    if rng.random() < 0.2:
        lesions.append((0.5 * radius, 0.5))
    texture = gaussian_filter(rng.standard_normal((nz, ny, nx)), sigma=(0.5, 1.2, 1.2))
    texture /= texture.std() + 1e-9
    mask = np.zeros((nz, ny, nx), dtype=np.uint8)
    side = rng.choice([-1.0, 1.0])
    for r, _ in lesions:
        base_r = r / scale ** (1 / 3)  # positions use the baseline size, so follow-ups line up
        z_margin = max(fz / 2 - base_r * 1.5 - sz, 0.0)
        center = np.array([side * lung_cx + rng.uniform(-0.25, 0.25) * lung_rx,
                           lung_cy + rng.uniform(-0.4, 0.4) * lung_ry,
                           rng.uniform(-0.6, 0.6) * z_margin])
        side = -side  # a second lesion sits in the other lung
        d = np.stack([x - center[0], y - center[1], z - center[2]])
        dist = np.sqrt((d**2).sum(axis=0)) + 1e-9
        bulge = _shape_field(rng, d / dist)
        inside = dist <= r * (1 + 0.35 * irregularity * bulge)
        mask[inside] = 1
    tumour = mask.astype(bool)
    img[tumour] = 35 + (12 + 50 * heterogeneity) * texture[tumour]
    img = gaussian_filter(img, sigma=0.5) + rng.normal(0, 10, img.shape)
    return np.clip(np.round(img), -1024, 3071).astype(np.int16), mask


def to_image(array: np.ndarray, spacing: tuple[float, float, float]):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    nz, ny, nx = array.shape
    image.SetOrigin((-nx * spacing[0] / 2, -ny * spacing[1] / 2, -nz * spacing[2] / 2))
    return image


def write_nifti(array: np.ndarray, spacing, path: Path) -> None:
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(to_image(array, spacing), str(path), useCompression=True)


def write_dicom_series(array: np.ndarray, spacing, folder: Path, patient_id: str, seed: int, series: str) -> None:
    """A CT DICOM series, one file per slice, every UID and date fixed by seed and patient."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    image = to_image(array, spacing)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    study = _uid(seed, patient_id, "study")
    series_uid = _uid(seed, patient_id, series)
    for k in range(image.GetDepth()):
        piece = image[:, :, k]
        tags = {
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
            "0008|0018": _uid(seed, patient_id, series, k),
            "0008|0060": "CT",
            "0008|0012": "20200101", "0008|0013": "000000",
            "0008|0020": "20200101", "0008|0030": "000000", "0008|0021": "20200101", "0008|0031": "000000",
            "0008|103e": f"synthetic chest CT, {series}",
            "0010|0010": patient_id, "0010|0020": patient_id,  # study pseudonym, no real identifier
            "0020|000d": study, "0020|000e": series_uid,
            "0020|0011": "1", "0020|0013": str(k + 1),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": "\\".join(f"{v:.4f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
            "0018|0050": f"{spacing[2]:.4f}",
            "0028|1052": "0", "0028|1053": "1",
        }
        for key, value in tags.items():
            piece.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"IM{k + 1:05d}.dcm"))
        writer.Execute(piece)
