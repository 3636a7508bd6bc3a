"""Bags of tile embeddings, one file per slide, and the manifest that maps slides to patients.

Formats (docs/pathology.md):

* ``.h5`` / ``.hdf5`` as TRIDENT and CLAM write them: dataset ``features``
  (tiles x dim, or 1 x tiles x dim) and ``coords`` (tiles x 2, level-0 pixels);
  the encoder's name and the magnification are read from attributes of the
  file, ``features`` or ``coords`` (``encoder``/``patch_encoder``/``model_name``,
  ``target_magnification``/``magnification``).
* ``.npz``: arrays ``features`` and ``coords`` (and optionally ``encoder``,
  ``magnification``); read without pickle.
* ``.parquet``: one row per tile, columns ``x``, ``y`` and either a list column
  ``features`` or numeric feature columns.

Bags are untrusted input: a manifest path must stay inside the manifest's
folder, an HDF5 file may not link to other files (external links or external
storage are refused), and nothing is ever unpickled.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tumorboard.api import DataError, read_table

ENCODER_KEYS = ("encoder", "patch_encoder", "encoder_name", "model_name")
MAGNIFICATION_KEYS = ("target_magnification", "magnification", "mag")
SUFFIXES = (".h5", ".hdf5", ".npz", ".parquet")


@dataclass
class Bag:
    """One slide's tiles: embeddings (tiles x dim, float32), coordinates, and what made them."""

    slide: str
    features: np.ndarray
    coords: np.ndarray
    encoder: str | None
    magnification: float | None


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return _text(value.reshape(-1)[0]) if value.size else None
    return str(value)


def _number(value) -> float | None:
    try:
        return float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None


def _read_h5(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    try:
        import h5py
    except ImportError as exc:
        raise DataError(f'{path}: reading .h5 bags needs h5py (not installed): pip install "tumorboard[pathology]"') from exc
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with handle as f:
        arrays = {}
        for name in ("features", "coords"):
            link = f.get(name, getlink=True)
            if link is None:
                if name == "features":
                    raise DataError(f"{path}: no 'features' dataset; TRIDENT/CLAM bags hold features (tiles x dim) and "
                                    f"coords (tiles x 2); it has {', '.join(f.keys()) or 'nothing'}")
                continue
            if not isinstance(link, h5py.HardLink):
                raise DataError(f"{path}: {name!r} is a link to another place ({type(link).__name__}); a bag must hold "
                                "its own data (tumorboard never follows links out of an input file)")
            dataset = f[name]
            if not isinstance(dataset, h5py.Dataset) or dataset.external:
                raise DataError(f"{path}: {name!r} is not a dataset stored in the file itself")
            arrays[name] = dataset[()]
        attrs = {}
        for holder in (f, f["features"], f.get("coords")):
            if holder is not None:
                attrs.update({k: holder.attrs[k] for k in holder.attrs})
    return arrays["features"], arrays.get("coords"), attrs


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, dict]:
    try:
        with np.load(path, allow_pickle=False) as stored:
            if "features" not in stored.files:
                raise DataError(f"{path}: no 'features' array; an .npz bag holds features (tiles x dim) and coords")
            attrs = {k: stored[k] for k in (*ENCODER_KEYS, *MAGNIFICATION_KEYS) if k in stored.files}
            return stored["features"], stored["coords"] if "coords" in stored.files else None, attrs
    except ValueError as exc:  # object arrays need pickle: refused
        raise DataError(f"{path}: cannot read without pickle ({exc}); store numeric arrays only") from exc


def _read_parquet(path: Path) -> tuple[np.ndarray, np.ndarray | None, dict]:
    frame = pl.read_parquet(path)
    coords = frame.select("x", "y").to_numpy() if {"x", "y"} <= set(frame.columns) else None
    if "features" in frame.columns:
        features = np.asarray(frame["features"].to_list(), dtype=np.float32)
    else:
        columns = [c for c in frame.columns if c not in ("x", "y", "tile") and frame[c].dtype.is_numeric()]
        if not columns:
            raise DataError(f"{path}: no feature columns; a Parquet bag has a 'features' list column or numeric columns")
        features = frame.select(columns).to_numpy()
    return features, coords, {}


def read_bag(path: Path, slide: str) -> Bag:
    """One slide's bag, checked: a 2-D float matrix with at least one tile, finite, coordinates to match."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"slide {slide!r}: file not found: {path}")
    reader = {".h5": _read_h5, ".hdf5": _read_h5, ".npz": _read_npz, ".parquet": _read_parquet}.get(suffix)
    if reader is None:
        raise DataError(f"{path}: unsupported bag format {suffix!r}; use .h5 (TRIDENT/CLAM), .npz or .parquet")
    features, coords, attrs = reader(path)
    features = np.asarray(features)
    if features.ndim == 3 and features.shape[0] == 1:  # CLAM's (1, tiles, dim)
        features = features[0]
    if features.ndim != 2 or features.shape[0] == 0 or not np.issubdtype(features.dtype, np.number):
        raise DataError(f"{path}: features must be a numeric tiles x dim matrix with at least one tile; "
                        f"got shape {features.shape} ({features.dtype})")
    features = features.astype(np.float32, copy=False)
    if not np.isfinite(features).all():
        bad = int(np.flatnonzero(~np.isfinite(features).all(axis=1))[0])
        raise DataError(f"{path}: tile {bad} has a NaN or infinite embedding; re-extract that slide")
    if coords is None:
        coords = np.full((len(features), 2), np.nan)
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim == 3 and coords.shape[0] == 1:
        coords = coords[0]
    if coords.shape != (len(features), 2):
        raise DataError(f"{path}: coords has shape {coords.shape}, expected ({len(features)}, 2) (one x, y per tile)")
    encoder = next((_text(attrs[k]) for k in ENCODER_KEYS if k in attrs), None)
    magnification = next((_number(attrs[k]) for k in MAGNIFICATION_KEYS if k in attrs), None)
    return Bag(slide, features, coords, encoder, magnification)


@dataclass
class Slides:
    """Every slide of the manifest, read once: tiles of all slides in one matrix, grouped by patient."""

    features: np.ndarray  # all tiles x dim
    coords: np.ndarray  # all tiles x 2
    slide_of_tile: np.ndarray  # index into slides
    slides: list[str]
    patient_of_slide: list[str]
    encoder: str | None
    magnification: float | None
    files: list[Path]

    @functools.cached_property
    def tiles_of(self) -> dict[str, np.ndarray]:
        """Patient id -> the indices of all their tiles (every slide of theirs: one patient-level bag)."""
        patient = np.array(self.patient_of_slide, dtype=object)[self.slide_of_tile]
        order = np.argsort(patient, kind="stable")
        ids, starts = np.unique(patient[order], return_index=True)
        return {str(p): order[s:e] for p, s, e in zip(ids, starts, [*starts[1:], len(order)], strict=True)}


def inside(base: Path, relative: str, manifest: Path, row: int) -> Path:
    """A manifest's slide path, refused when it leaves the manifest's folder (absolute, or through ..)."""
    candidate = Path(relative)
    resolved = (base / candidate).resolve()
    if candidate.is_absolute() or not resolved.is_relative_to(base.resolve()):
        raise DataError(f"{manifest}: row {row + 1}: slide path {relative!r} leaves the folder {base}; slide paths are "
                        "relative to the manifest's folder (or to the folder option) and stay inside it")
    return resolved


@functools.lru_cache(maxsize=4)
def read_slides(manifest: Path, folder: Path | None, expected_encoder: str | None, _versions: tuple) -> Slides:
    """Read every slide the manifest lists; check the encoder and dimension agree across slides."""
    table = read_table(manifest, "patient_id")
    if "slide" not in table.columns:
        raise DataError(f"{manifest}: a slide manifest needs columns patient_id and slide (a bag file per row); it has "
                        f"{', '.join(table.columns)}")
    base = folder if folder is not None else manifest.parent
    ids = table["slide_id"].cast(pl.String).to_list() if "slide_id" in table.columns else None
    bags: list[Bag] = []
    patients: list[str] = []
    files: list[Path] = [manifest]
    for row, (patient, relative) in enumerate(zip(table["patient_id"].to_list(), table["slide"].cast(pl.String).to_list(),
                                                  strict=True)):
        if relative is None:
            raise DataError(f"{manifest}: row {row + 1} (patient {patient!r}) has no slide path")
        path = inside(base, relative, manifest, row)
        name = ids[row] if ids else Path(relative).stem
        bag = read_bag(path, name)
        if bags and bag.features.shape[1] != bags[0].features.shape[1]:
            raise DataError(f"{path}: embeddings of dimension {bag.features.shape[1]}, but slide {bags[0].slide!r} has "
                            f"{bags[0].features.shape[1]}: every slide must come from the same encoder")
        encoders = {b.encoder for b in bags if b.encoder} | ({bag.encoder} if bag.encoder else set())
        if len(encoders) > 1:
            raise DataError(f"{path}: encoder {bag.encoder!r}, but other slides say {sorted(encoders - {bag.encoder})}: "
                            "embeddings of different encoders cannot be pooled together; re-extract with one encoder")
        if expected_encoder and bag.encoder and bag.encoder != expected_encoder:
            raise DataError(f"{path}: encoder {bag.encoder!r}, but the spec's encoder option says {expected_encoder!r}")
        bags.append(bag)
        patients.append(str(patient))
        files.append(path)
    if not bags:
        raise DataError(f"{manifest}: lists no slides")
    duplicated = pl.Series([b.slide for b in bags]).is_duplicated()
    if duplicated.any():
        raise DataError(f"{manifest}: slide {bags[int(duplicated.arg_max())].slide!r} is listed twice; list each slide once")
    magnifications = {b.magnification for b in bags if b.magnification is not None}
    return Slides(
        features=np.concatenate([b.features for b in bags]),
        coords=np.concatenate([b.coords for b in bags]),
        slide_of_tile=np.repeat(np.arange(len(bags)), [len(b.features) for b in bags]),
        slides=[b.slide for b in bags],
        patient_of_slide=patients,
        encoder=next((b.encoder for b in bags if b.encoder), None),
        magnification=magnifications.pop() if len(magnifications) == 1 else None,
        files=files,
    )
