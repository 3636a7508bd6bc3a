"""``imaging.longitudinal``: tumour response between a baseline and a follow-up scan.

Per lesion (a 26-connected component of the mask) and in total: volume,
longest axial diameter, their percent change, the RECIST 1.1 category from
the sum of the target lesions' longest diameters, and the change in
first-order and texture features (delta radiomics).

A follow-up scan is information from the future of the baseline: the
modality refuses a spec whose ``landmark_day`` (the day predictions are made
from) precedes any follow-up scan it would use. For survival, measure the
outcome from that day (``landmark_table``): patients who had the event or
were censored before it leave the analysis.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from tumorboard.api import Options, ComponentError, DataError, InputPath, TumorboardWarning, read_table

from .modality import MeasuredFeatures
from .preprocess import Preparation, prepare, unusable, warn_unusable
from .radiomics import region_features

RECIST = ("CR", "PR", "SD", "PD")
DELTA_FAMILIES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


@dataclass(frozen=True)
class Lesion:
    """One connected component of a mask: where it is and how big."""

    centroid_mm: np.ndarray
    volume_mm3: float
    diameter_mm: float  # longest axial (in-plane) diameter, RECIST's measurement


def longest_axial_diameter(lesion: np.ndarray, spacing_zyx: tuple[float, float, float]) -> float:
    """The longest in-plane extent over the lesion's axial slices (mm), measured between voxel corners,
    as a reader measures the longest diameter on the axial image."""
    from scipy.spatial import ConvexHull, QhullError
    from scipy.spatial.distance import pdist

    dy, dx = spacing_zyx[1], spacing_zyx[2]
    corners = np.array([(-0.5, -0.5), (-0.5, 0.5), (0.5, -0.5), (0.5, 0.5)])
    longest = 0.0
    for z in np.flatnonzero(lesion.any(axis=(1, 2))):
        centres = np.argwhere(lesion[z]).astype(np.float64)
        points = (centres[:, None, :] + corners[None]).reshape(-1, 2) * (dy, dx)
        try:
            points = points[ConvexHull(points).vertices]
        except (QhullError, ValueError):  # a line of voxels has no 2-D hull: every corner is on it
            pass
        longest = max(longest, float(pdist(points).max()))
    return longest


def find_lesions(region: np.ndarray, spacing_zyx: tuple[float, float, float]) -> list[Lesion]:
    """Every 26-connected component of the mask, largest first."""
    from skimage.measure import label

    components, n = label(region, connectivity=3, return_num=True)
    voxel = float(np.prod(spacing_zyx))
    found = []
    for k in range(1, n + 1):
        lesion = components == k
        coords = np.argwhere(lesion) * np.asarray(spacing_zyx)
        found.append(Lesion(coords.mean(axis=0), float(lesion.sum()) * voxel, longest_axial_diameter(lesion, spacing_zyx)))
    return sorted(found, key=lambda lesion: -lesion.volume_mm3)


def recist_category(baseline_sld: float, followup_sld: float, new_lesion: bool) -> str:
    """RECIST 1.1 from the sums of the target lesions' longest diameters (mm); the baseline is the nadir.

    PD: a new lesion, or at least 20% and 5 mm growth; CR: every target
    lesion gone; PR: at least 30% shrinkage; SD otherwise.
    """
    if new_lesion:
        return "PD"
    if followup_sld == 0:
        return "CR"
    change = (followup_sld - baseline_sld) / baseline_sld
    if change <= -0.30:
        return "PR"
    if change >= 0.20 and followup_sld - baseline_sld >= 5.0:
        return "PD"
    return "SD"


@dataclass
class Response:
    """One patient's change from baseline to follow-up."""

    baseline: list[Lesion]
    followup: list[Lesion]
    targets: list[int]  # baseline lesions measured for RECIST
    followup_diameters: list[float]  # per target lesion, at follow-up (0 when gone)
    new_lesions: int
    category: str

    @property
    def sld(self) -> tuple[float, float]:
        return sum(self.baseline[k].diameter_mm for k in self.targets), sum(self.followup_diameters)


def assess(baseline: list[Lesion], followup: list[Lesion], min_diameter_mm: float, max_lesions: int,
           match_mm: float) -> Response:
    """Match follow-up lesions to baseline ones (nearest centroid within ``match_mm`` or the baseline
    lesion's own diameter) and classify. Scans are assumed registered (one frame of reference)."""
    owner = []
    for lesion in followup:
        distances = [float(np.linalg.norm(lesion.centroid_mm - b.centroid_mm)) for b in baseline]
        k = int(np.argmin(distances)) if distances else -1
        near = k >= 0 and distances[k] <= max(match_mm, baseline[k].diameter_mm)
        owner.append(k if near else -1)
    targets = [k for k, b in enumerate(baseline) if b.diameter_mm >= min_diameter_mm][:max_lesions]
    # a lesion that split in two is measured as the longest of its parts (RECIST measures the lesion)
    diameters = [max((f.diameter_mm for f, o in zip(followup, owner, strict=True) if o == k), default=0.0)
                 for k in targets]
    new = sum(1 for f, o in zip(followup, owner, strict=True) if o == -1 and f.diameter_mm >= min_diameter_mm)
    baseline_sld = sum(baseline[k].diameter_mm for k in targets)
    category = recist_category(baseline_sld, sum(diameters), new > 0) if targets else ("PD" if new else "SD")
    return Response(baseline, followup, targets, diameters, new, category)


def landmark_table(frame: pl.DataFrame, time: str, landmark: float) -> pl.DataFrame:
    """Outcomes for a landmark analysis: patients still at risk at ``landmark`` (in ``time``'s units),
    with time measured from it. Patients with the event or censored before the landmark leave."""
    return frame.filter(pl.col(time) > landmark).with_columns((pl.col(time) - landmark).alias(time))


class LongitudinalOptions(Options):
    """Where the scans are, the landmark, and how response is measured."""
    manifest: InputPath = Field(description="Table with patient_id, time_point (or timepoint), image, mask and "
                                            "optionally day (days since baseline).")
    folder: InputPath | None = Field(None, description="Folder the manifest's paths are relative to (default: the "
                                                       "manifest's folder).")
    baseline: str = Field("baseline", description="Time point label of the baseline scan.")
    followup: str = Field("followup", description="Time point label of the follow-up scan.")
    landmark_day: NonNegativeFloat = Field(
        description="Day (since baseline) from which the target is predicted; every follow-up scan used must be "
                    "taken on or before it. Measure survival from this day (a landmark analysis).")
    followup_day: NonNegativeFloat | None = Field(
        None, description="Day of the follow-up scans when the manifest has no day column.")
    label: int | None = Field(None, description="Mask label of the lesions (default: the 1s of a 0/1 mask).")
    min_diameter_mm: PositiveFloat = Field(10.0, description="Smallest measurable (target) lesion, RECIST 1.1.")
    max_lesions: PositiveInt = Field(5, description="Target lesions at most (RECIST 1.1: 5, the largest).")
    match_mm: PositiveFloat = Field(10.0, description="A follow-up lesion within this distance (or the baseline "
                                                      "lesion's diameter) of a baseline lesion is the same lesion.")
    delta_families: list[Literal["firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"]] = Field(
        list(DELTA_FAMILIES), description="Radiomic families whose change (follow-up minus baseline) is a feature.")
    bin_width: PositiveFloat = Field(25.0, description="Grey-level bin width of the delta radiomics.")
    window: tuple[float, float] | None = Field(None, description="Clip intensities to [low, high] (HU for CT).")
    cache: Path | None = Field(Path(".tumorboard-cache/imaging"), description="Cache of prepared arrays.")


class ImagingLongitudinal(MeasuredFeatures):
    """Tumour response from a baseline and a follow-up scan: volume and longest axial diameter per lesion
    and in total, percent change, RECIST 1.1 category, delta radiomics.

    Refuses a ``landmark_day`` before a follow-up scan it would use: a
    prediction made on day 0 cannot see a day-60 scan. Features are imputed
    and standardised with training statistics only; a patient without both
    scans is marked absent.
    """

    name = "imaging.longitudinal"
    tasks = frozenset({"binary", "multiclass", "regression", "survival"})
    Options = LongitudinalOptions

    # --- inputs -------------------------------------------------------------

    def _scans(self) -> dict[str, tuple[Path, Path, Path, Path, float]]:
        o = self.options
        return _pairs(Path(o.manifest), Path(o.manifest).stat().st_mtime_ns, o.baseline, o.followup,
                      Path(o.folder) if o.folder is not None else None, o.followup_day)

    def available_ids(self) -> set[str]:
        return set(self._scans())

    def _check_landmark(self, ids: Sequence[str]) -> None:
        scans = self._scans()
        late = sorted({scans[i][4] for i in map(str, ids) if i in scans and scans[i][4] > self.options.landmark_day})
        if late:
            raise ComponentError(
                f"{self.name}: follow-up scans of day {late[0]:g}"
                + (f" to {late[-1]:g}" if len(late) > 1 else "")
                + f" come after landmark_day = {self.options.landmark_day:g}: a prediction made on day "
                f"{self.options.landmark_day:g} cannot use them. Set landmark_day to {late[-1]:g} or later and "
                "measure the target from that day (for survival, a landmark analysis: time from the follow-up date)"
            )

    # --- per patient --------------------------------------------------------

    def assess(self, patient: str) -> tuple[Response, dict[str, float]] | str | None:
        """One patient's response and delta radiomics (None without both scans; the reason when a scan
        is unusable)."""
        found = self._scans().get(str(patient))
        return None if found is None else assess_scans(found, self.options)

    def _row(self, patient: str) -> tuple[tuple[str, float], ...] | str | None:
        found = self._scans().get(str(patient))
        if found is None:
            return None
        # measuring is not learning: every fold's copy shares one measurement per patient and file version
        stamps = tuple(Path(p).stat().st_mtime_ns for p in found[:4])
        return _measured(found, stamps, self.options.model_dump_json())

    def _matrix(self, ids: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        self._check_landmark(ids)
        measured = [self._row(str(i)) for i in ids]
        # a scan unusable after preprocessing (all NaN, constant) marks the patient absent, with a warning
        warn_unusable(self.name, [(self._scans()[str(i)][0], m) for i, m in zip(ids, measured, strict=True)
                                  if isinstance(m, str)])
        rows = [dict(m) if isinstance(m, tuple) else None for m in measured]
        names = list(dict.fromkeys(k for r in rows if r for k in r))
        values = np.array([[r.get(n, np.nan) for n in names] if r else [np.nan] * len(names) for r in rows],
                          dtype=np.float64).reshape(len(ids), len(names))
        return names, values, np.array([r is not None for r in rows])

    # --- the component contract ---------------------------------------------

    def _nothing_measured(self, n: int) -> str:
        return (f"{self.name}: none of the {n} training patients has both a {self.options.baseline!r} and a "
                f"{self.options.followup!r} scan")


def assess_scans(found: tuple, options: LongitudinalOptions) -> tuple[Response, dict[str, float]] | str:
    """Response and delta radiomics from (baseline image, mask, follow-up image, mask, day), or why a
    scan cannot be used."""
    def prepared(image: Path, mask: Path, allow_empty: bool):
        # not cropped: lesions are matched between the scans by position in the volume
        prep = Preparation(None, "linear", options.window, None, options.label, allow_empty)
        return prepare(image, mask, prep, options.cache)

    # the follow-up mask may be empty: every lesion gone is a complete response
    (image0, region0, spacing0), (image1, region1, spacing1) = (
        prepared(found[0], found[1], False), prepared(found[2], found[3], True))
    for which, image, region in (("baseline", image0, region0), ("follow-up", image1, region1 if region1.any() else None)):
        why = unusable(image, region)
        if why is not None:
            return f"({which} scan) {why}"
    response = assess(find_lesions(region0, spacing0), find_lesions(region1, spacing1) if region1.any() else [],
                      options.min_diameter_mm, options.max_lesions, options.match_mm)
    families = tuple(options.delta_families)
    delta: dict[str, float] = {}
    if families:
        before = region_features(image0, region0, spacing0, families, options.bin_width)
        after = region_features(image1, region1, spacing1, families, options.bin_width) if region1.any() else {}
        delta = {f"delta:{k}": after.get(k, np.nan) - v for k, v in before.items()}
    return response, delta


@functools.lru_cache(maxsize=100_000)
def _measured(found: tuple, stamps: tuple, settings: str) -> tuple[tuple[str, float], ...] | str:
    """One patient's unscaled features (or why a scan is unusable), cached by files, file versions and options."""
    result = assess_scans(found, LongitudinalOptions.model_validate_json(settings))
    if isinstance(result, str):
        return result
    response, delta = result
    v0 = sum(lesion.volume_mm3 for lesion in response.baseline)
    v1 = sum(lesion.volume_mm3 for lesion in response.followup)
    s0, s1 = response.sld
    row = {
        "volume_baseline_ml": v0 / 1000, "volume_followup_ml": v1 / 1000,
        "volume_change_pct": 100 * (v1 - v0) / v0 if v0 else np.nan,
        "sld_baseline_mm": s0, "sld_followup_mm": s1, "sld_change_pct": 100 * (s1 - s0) / s0 if s0 else np.nan,
        "lesions_baseline": float(len(response.baseline)), "lesions_followup": float(len(response.followup)),
        "new_lesions": float(response.new_lesions),
        **{f"recist={c}": float(response.category == c) for c in RECIST},
    }
    return tuple({**row, **delta}.items())


@functools.lru_cache(maxsize=8)
def _pairs(path: Path, mtime: int, baseline: str, followup: str, folder: Path | None,
           followup_day: float | None) -> dict[str, tuple[Path, Path, Path, Path, float]]:
    """patient -> (baseline image, mask, follow-up image, mask, follow-up day) from the manifest."""
    table = read_table(path, "patient_id")
    column = next((c for c in ("time_point", "timepoint") if c in table.columns), None)
    missing = [c for c in ("image", "mask") if c not in table.columns] + ([] if column else ["time_point"])
    if missing:
        raise DataError(f"{path}: a longitudinal manifest needs columns patient_id, time_point, image, mask; "
                        f"{', '.join(missing)} missing (it has {', '.join(table.columns)})")
    if "day" not in table.columns and followup_day is None:
        raise DataError(f"{path}: no day column says when the follow-up scans were taken; add one (days since "
                        "baseline) or set the option followup_day")
    base = folder if folder is not None else path.parent
    scans: dict[str, dict[str, tuple[Path, Path, float]]] = {}
    for row in table.iter_rows(named=True):
        point = str(row[column])
        if point not in (baseline, followup):
            continue
        if point in scans.setdefault(row["patient_id"], {}):
            raise DataError(f"{path}: patient {row['patient_id']!r} has two {point!r} rows; keep one scan per time point")
        day = float(row["day"]) if "day" in table.columns and row["day"] is not None else followup_day
        scans[row["patient_id"]][point] = (base / row["image"], base / row["mask"], day)  # type: ignore[assignment]
    pairs = {pid: (s[baseline][0], s[baseline][1], s[followup][0], s[followup][1], float(s[followup][2]))
             for pid, s in scans.items() if baseline in s and followup in s}
    incomplete = len(scans) - len(pairs)
    if incomplete:
        warnings.warn(f"{path}: {incomplete} patient(s) lack a {baseline!r} or {followup!r} scan and are marked "
                      "absent for imaging.longitudinal", TumorboardWarning, stacklevel=2)
    return pairs
