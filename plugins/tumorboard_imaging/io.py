"""Reading images and masks through SimpleITK (DICOM series, NIfTI, NRRD, MHA), checked.

Every error names the file (or folder) and what to change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from tumorboard.api import DataError


def read_image(path: Path) -> sitk.Image:
    """One image: a DICOM series folder (exactly one series) or a NIfTI / NRRD / MHA file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"image not found: {path}")
    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        series = reader.GetGDCMSeriesIDs(str(path))
        if not series:
            raise DataError(f"{path}: a folder was given but it holds no DICOM series")
        if len(series) > 1:
            raise DataError(f"{path}: the folder mixes {len(series)} DICOM series (SeriesInstanceUIDs "
                            f"{', '.join(series[:3])}); keep one series per folder")
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path), series[0]))
        try:
            return reader.Execute()
        except RuntimeError as err:
            raise DataError(f"{path}: the DICOM series cannot be read (corrupt or incomplete?): {_first_line(err)}") from None
    try:
        if path.name.lower().endswith((".nii", ".nii.gz")):
            _check_nifti_length(path)
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise DataError(f"{path}: cannot be read as an image (corrupt or truncated file, or not NIfTI/NRRD/MHA/DICOM): "
                        f"{_first_line(err)}") from None


def _check_nifti_length(path: Path) -> None:
    """ITK fills a truncated NIfTI's missing voxels with zeros and says nothing: count the bytes ourselves."""
    import gzip

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    needed = int(float(reader.GetMetaData("vox_offset"))) + int(np.prod(reader.GetSize())) * \
        reader.GetNumberOfComponents() * int(reader.GetMetaData("bitpix")) // 8
    if path.name.lower().endswith(".gz"):
        have = 0
        try:
            with gzip.open(path, "rb") as stream:
                while chunk := stream.read(1 << 24):
                    have += len(chunk)
        except (OSError, EOFError) as err:
            raise RuntimeError(f"the compressed stream is broken ({err})") from None
    else:
        have = path.stat().st_size
    if have < needed:
        raise RuntimeError(f"the file is truncated: its header needs {needed} bytes of data, it holds {have}")


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    # SimpleITK's messages start with a source location; the reason is the last line
    return lines[-1] if lines else type(err).__name__


def require_3d(image: sitk.Image, path: Path) -> None:
    """Refuse a 2-D image (or a 3-D one a single slice thick) where a volume is expected."""
    size = image.GetSize()
    if image.GetDimension() != 3 or min(size) < 2:
        raise DataError(f"{path}: a 3-D volume is expected but the image is {image.GetDimension()}-D with size "
                        f"{'x'.join(map(str, size))}; use a 2-D backbone for 2-D images")


def check_geometry(image: sitk.Image, mask: sitk.Image, image_path: Path, mask_path: Path,
                   tolerance: float = 1e-3) -> None:
    """Image and mask must share size, spacing, origin and direction (within ``tolerance``)."""
    checks = [("size", image.GetSize(), mask.GetSize()), ("spacing", image.GetSpacing(), mask.GetSpacing()),
              ("origin", image.GetOrigin(), mask.GetOrigin()), ("direction", image.GetDirection(), mask.GetDirection())]
    for what, a, b in checks:
        if len(a) != len(b) or not np.allclose(a, b, atol=tolerance, rtol=tolerance):
            raise DataError(f"image {image_path} and mask {mask_path} disagree in {what}: {_fmt(a)} vs {_fmt(b)}; "
                            "the mask must be drawn on this very image (resample it onto the image first)")


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _inflate(raw: bytes) -> bytes:
    """A gzip stream inflated in one call: ISA-L (the ``isal`` package) where installed, about twice
    as fast as the standard library's zlib on CT volumes, else zlib."""
    try:
        from isal import isal_zlib as inflater
    except ImportError:  # a platform without isal's wheels
        import zlib as inflater
    return inflater.decompress(raw, wbits=31)


def read_nifti_array(path: Path) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray] | None:
    """A plain 3-D NIfTI file as (array z-y-x, spacing z-y-x, voxel-to-world affine) through nibabel.

    nibabel reads a compressed NIfTI about three times faster than ITK's reader
    (which inflates the stream more than once). The stream is inflated in one
    call (nibabel's own streaming read of a .gz is about 1.5x slower), nibabel
    parses the header, and the voxels are a view of the inflated bytes scaled
    by nibabel's own read scaling: building a full ``Nifti1Image`` cost more
    than the rest for a small volume. Anything unusual (not single-file NIfTI-1,
    not 3-D, truncated, unreadable) answers None, and the caller reads the
    file through SimpleITK, whose path checks and names every problem.
    """
    name = Path(path).name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return None
    try:
        import io

        import nibabel
        from nibabel.volumeutils import apply_read_scaling

        raw = Path(path).read_bytes()
        data = _inflate(raw) if name.endswith(".gz") else raw
        header = nibabel.Nifti1Header.from_fileobj(io.BytesIO(data), check=False)
        shape = header.get_data_shape()
        if header["magic"].item() != b"n+1" or len(shape) != 3 or min(shape) < 2:
            return None
        count = int(np.prod(shape))
        array = np.frombuffer(data, dtype=header.get_data_dtype(), count=count,
                              offset=int(header.get_data_offset())).reshape(shape, order="F")
        array = apply_read_scaling(array, *header.get_slope_inter())
        affine = header.get_best_affine()
        zooms = header.get_zooms()[:3]
    except Exception:  # noqa: BLE001 - the SimpleITK path reports the problem with the file's name
        return None
    return array.transpose(2, 1, 0), tuple(float(z) for z in zooms[::-1]), np.asarray(affine, dtype=np.float64)


def check_array_geometry(image: tuple, mask: tuple, image_path: Path, mask_path: Path, tolerance: float = 1e-3) -> None:
    """``check_geometry`` for two arrays read by ``read_nifti_array``: same size, spacing and affine."""
    checks = [("size", image[0].shape[::-1], mask[0].shape[::-1]), ("spacing", image[1][::-1], mask[1][::-1]),
              ("voxel-to-world affine", image[2].ravel(), mask[2].ravel())]
    for what, a, b in checks:
        # np.allclose's test (|a - b| <= atol + rtol |b|) written out: allclose's own overhead was a tenth
        # of a small region's whole extraction
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape or not (np.abs(a - b) <= tolerance + tolerance * np.abs(b)).all():
            raise DataError(f"image {image_path} and mask {mask_path} disagree in {what}: {_fmt(a)} vs {_fmt(b)}; "
                            "the mask must be drawn on this very image (resample it onto the image first)")


def mask_voxels(mask: sitk.Image | np.ndarray, path: Path, label: int | None, allow_empty: bool = False) -> np.ndarray:
    """The region as a boolean array (z, y, x): voxels equal to ``label``, or the 1s of a 0/1 mask.

    An empty mask is an error unless ``allow_empty`` (a follow-up scan whose tumour has gone)."""
    values = mask if isinstance(mask, np.ndarray) else sitk.GetArrayViewFromImage(mask)
    # min and max decide a 0/1 mask in two passes; the full list of labels is only needed for the message
    if label is None:
        if values.size and (values.min() < 0 or values.max() > 1 or (values.dtype.kind == "f" and
                                                                   not np.isin(values, (0, 1)).all())):
            shown = ", ".join(f"{v:g}" for v in np.unique(values)[:10])
            raise DataError(f"{path}: the mask holds labels {shown}, not only 0/1; set the modality's option "
                            "label to the one to use (for example label = 2)")
        label = 1
    region = values == label
    if not allow_empty and not region.any():
        raise DataError(f"{path}: the mask is empty (no voxel has label {label}); check the file or the label option")
    return region
