"""A synthetic multimodal oncology cohort with planted ground truth.

``generate(out, patients=300, seed=0)`` writes OMOP CDM v5.4 tables, omics
matrices, CT volumes with masks (NIfTI, and DICOM series for a subset), the
outcomes table and the ground truth. Patients are generated and written in
chunks, so 100,000 patients (without images) fit comfortably in memory; the
same seed gives byte-identical files. docs/synthetic-cohort.md states the model.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from tumorboard.api import TumorboardWarning, harrell_c, staged_directory
from . import imaging, model, omics, omop, slides
from . import params as P

CHUNK = 2000  # fixed: part of what a seed means
GENERATOR_VERSION = "2"


@dataclass
class SynthOptions:
    """What to generate; the defaults are the demo's cohort."""

    patients: int = 300
    seed: int = 0
    images: bool = True
    confounded: bool = False
    image_size: tuple[int, int, int] = (64, 64, 32)
    # 80 x 80 x 80 mm: a chest wide enough that a median tumour (about 2 cm across) fits in a lung
    spacing: tuple[float, float, float] = (1.25, 1.25, 2.5)
    dicom_fraction: float = 0.1
    rna_genes: int = 2000
    # the EHR is always written as OMOP CDM; "meds" and "fhir" add the same records as a MEDS dataset
    # (meds/) and FHIR R4 bundles (fhir/), converted from those OMOP tables by tumorboard_ehr's writers
    ehr_formats: tuple[str, ...] = ("omop",)
    # whole-slide tile embeddings (pathology/slides/*.h5 and pathology/manifest.csv): EGFR-mutant
    # tumours carry a planted morphology in a few tiles (slides.py); which tiles: ground_truth_tiles.parquet
    slides: bool = False


class _TableSink:
    """Appends chunks of one table to CSV/TSV and Parquet without holding the whole table."""

    def __init__(self, path_stem: Path, formats: tuple[str, ...]):
        self.stem = path_stem
        self.formats = formats
        self.parts: list[Path] = []
        self.first = True
        path_stem.parent.mkdir(parents=True, exist_ok=True)

    def add(self, frame: pl.DataFrame) -> None:
        for fmt in self.formats:
            if fmt in ("csv", "tsv"):
                with open(self.stem.with_suffix(f".{fmt}"), "ab" if not self.first else "wb") as fh:
                    frame.write_csv(fh, separator="," if fmt == "csv" else "\t", include_header=self.first,
                                    date_format="%Y-%m-%d", datetime_format="%Y-%m-%d %H:%M:%S")
        if "parquet" in self.formats:
            part = self.stem.parent / f".{self.stem.name}.part{len(self.parts):05d}.parquet"
            frame.write_parquet(part)
            self.parts.append(part)
        self.first = False

    def close(self) -> None:
        if not self.parts:
            return
        target = self.stem.with_suffix(".parquet")
        if len(self.parts) == 1:
            self.parts[0].rename(target)
        else:
            # streamed concatenation: never the whole table in memory
            pl.scan_parquet(self.parts).sink_parquet(target)
            for part in self.parts:
                part.unlink()


@dataclass
class _Truth:
    """Per-patient arrays kept for the cohort-level ground truth (a few floats each)."""

    columns: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **arrays: np.ndarray) -> None:
        for key, value in arrays.items():
            self.columns.setdefault(key, []).append(np.asarray(value))

    def get(self, key: str) -> np.ndarray:
        return np.concatenate(self.columns[key])


def _age_band(age: np.ndarray) -> np.ndarray:
    return np.select([age < 50, age < 65, age < 75], ["<50", "50-64", "65-74"], "75+")


def generate(
    out: Path,
    options: SynthOptions | None = None,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the cohort into ``out`` (atomically: a failed run leaves nothing there)."""
    options = options or SynthOptions()
    if options.patients < 1:
        raise ValueError(f"patients must be at least 1, got {options.patients}")
    unknown = set(options.ehr_formats) - {"omop", "meds", "fhir"}
    if unknown:
        raise ValueError(f"ehr_formats {sorted(unknown)}: choose from omop, meds, fhir")
    out = Path(out).resolve()
    with staged_directory(out, overwrite, "synthetic cohort") as staged:
        _generate_into(staged.path, options, progress or (lambda done, total: None))
    for note in staged.notes:
        warnings.warn(note, TumorboardWarning, stacklevel=2)
    return staged.final or out


def _generate_into(stage: Path, o: SynthOptions, progress: Callable[[int, int], None]) -> None:
    seed = o.seed
    lp = omics.layer_params(seed, o.rna_genes)
    sinks: dict[str, _TableSink] = {}

    def sink(name: str, stem: Path, formats: tuple[str, ...]) -> _TableSink:
        if name not in sinks:
            sinks[name] = _TableSink(stem, formats)
        return sinks[name]

    truth = _Truth()
    manifest_rows: list[dict] = []
    dicom_rows: list[dict] = []
    slide_rows: list[dict] = []
    tile_truth: list[dict] = []
    done = 0
    for chunk, start in enumerate(range(0, o.patients, CHUNK)):
        n = min(CHUNK, o.patients - start)
        p = model.draw_patients(np.random.default_rng([seed, chunk, 1]), start, n, o.confounded)
        out_ = model.outcomes(np.random.default_rng([seed, chunk, 2]), p)
        ids = omop.patient_ids(p)
        for table, frame in omop.build(np.random.default_rng([seed, chunk, 3]), p, out_).items():
            sink(f"omop/{table}", stage / "omop" / table, ("csv", "parquet")).add(frame)
        for layer, frame in omics.build(np.random.default_rng([seed, chunk, 4]), p, lp, ids).items():
            sink(f"omics/{layer}", stage / "omics" / layer, ("tsv", "parquet")).add(frame)
        sink("outcomes", stage / "outcomes", ("csv", "parquet")).add(pl.DataFrame({
            "patient_id": ids,
            "treatment": np.where(p["targeted"], "targeted", "chemo"),
            "response": out_["response"].astype(np.int8),
            "os_months": out_["os_months"],
            "os_event": out_["os_event"].astype(np.int8),
            "sex": p["sex"], "age_band": _age_band(p["age"]), "site": p["site"],
        }))
        sink("tables/clinical_baseline", stage / "tables" / "clinical_baseline", ("csv", "parquet")).add(
            _clinical_baseline(np.random.default_rng([seed, chunk, 5]), p, ids))
        volume_mm3 = np.full(n, np.nan)
        if o.images:
            for j in range(n):
                if not p["has_scan"][j]:
                    continue
                volume_mm3[j] = _write_scans(stage, o, p, out_, j, ids[j], manifest_rows, dicom_rows)
                progress(done + j + 1, o.patients)
        if o.slides:
            rows, truth_rows = slides.build(np.random.default_rng([seed, chunk, 7]), seed, ids, p["mutations"]["EGFR"], stage)
            slide_rows += rows
            tile_truth += truth_rows
        sink("ground_truth", stage / "ground_truth", ("parquet",)).add(pl.DataFrame({
            "patient_id": ids,
            "true_response_probability": out_["prob"], "p_chemo": out_["p_chemo"], "p_targeted": out_["p_targeted"],
            "treatment_effect": out_["effect"], "best_therapy": out_["best"],
            "eta_clinical": out_["eta_parts"]["clinical"], "eta_omics": out_["eta_parts"]["omics"],
            "eta_imaging": out_["eta_parts"]["imaging"], "log_hazard": out_["xi"],
            "EGFR": p["mutations"]["EGFR"], "KRAS": p["mutations"]["KRAS"],
            **{f"program_{name}": p["programs"][:, k] for k, name in enumerate(P.PROGRAMS)},
            "planted_volume_mm3": np.exp(p["log_volume"]), "tumour_volume_mm3": volume_mm3,
            "heterogeneity": p["heterogeneity"], "irregularity": p["irregularity"], "has_scan": p["has_scan"],
        }))
        truth.add(prob=out_["prob"], response=out_["response"], xi=out_["xi"], time=out_["os_months"],
                  event=out_["os_event"], **{f"eta_{k}": v for k, v in out_["eta_parts"].items()},
                  **{f"xi_{k}": v for k, v in out_["xi_parts"].items()})
        done += n
        progress(done, o.patients)
    for s in sinks.values():
        s.close()
    omop.concept_table().write_csv(stage / "omop" / "concept.csv", date_format="%Y-%m-%d")
    omop.concept_table().write_parquet(stage / "omop" / "concept.parquet")
    if o.slides:
        pl.DataFrame(slide_rows).write_csv(stage / "pathology" / "manifest.csv")
        pl.DataFrame(tile_truth).write_parquet(stage / "ground_truth_tiles.parquet")
    if {"meds", "fhir"} & set(o.ehr_formats):
        _write_other_ehr_formats(stage, o)
    if o.images:
        pl.DataFrame(manifest_rows).write_csv(stage / "imaging" / "manifest.csv")
        if dicom_rows:
            pl.DataFrame(dicom_rows).write_csv(stage / "imaging" / "manifest_dicom.csv")
    (stage / "ground_truth.json").write_text(json.dumps(_summary(o, truth), indent=2) + "\n", encoding="utf-8")


def _write_other_ehr_formats(stage: Path, o: SynthOptions) -> None:
    """The OMOP records again as MEDS and/or FHIR, through the EHR plugin's own converters."""
    from tumorboard_ehr.events import read_omop
    from tumorboard_ehr.fhir import write_fhir
    from tumorboard_ehr.meds import write_meds

    source = read_omop(stage / "omop", "person_source_value")
    concepts = omop.concept_table()
    if "meds" in o.ehr_formats:
        write_meds(source, concepts, stage / "meds", dataset_name=f"tumorboard-synth seed {o.seed}", seed=o.seed)
    if "fhir" in o.ehr_formats:
        write_fhir(source, concepts, stage / "fhir")


def _clinical_baseline(rng: np.random.Generator, p: dict, ids: list[str]) -> pl.DataFrame:
    """A flat per-patient extract as a registry would hold (US units; about 8% of labs missing)."""
    n = len(ids)

    def gappy(values: np.ndarray, decimals: int) -> np.ndarray:
        values = np.round(values, decimals).astype(float)
        values[rng.random(n) < 0.08] = np.nan
        return values

    return pl.DataFrame({
        "patient_id": ids, "age": p["age"].astype(int), "sex": p["sex"], "smoking": p["smoking"],
        "stage": p["stage"], "ecog": p["ecog"],
        "hemoglobin_g_dl": gappy(p["hemoglobin"], 1), "creatinine_mg_dl": gappy(p["creatinine"], 2),
        "ldh_u_l": gappy(p["ldh"], 0), "albumin_g_dl": gappy(p["albumin"], 1),
        "cea_ng_ml": gappy(np.exp(p["log_cea"]), 1),
    }).fill_nan(None)


def _write_scans(stage, o, p, out_, j, pid, manifest_rows, dicom_rows) -> float:
    base = dict(volume_mm3=float(np.exp(p["log_volume"][j])), heterogeneity=float(p["heterogeneity"][j]),
                irregularity=float(p["irregularity"][j]), size=o.image_size, spacing=o.spacing)
    # follow-up volume change: responders shrink by about half, others grow
    rng = np.random.default_rng([o.seed, 6_000_000, int(p["index"][j])])
    change = np.exp(rng.normal(-0.7, 0.2)) if out_["response"][j] else np.exp(rng.normal(0.25, 0.15))
    voxel = float(np.prod(o.spacing))
    volume = float("nan")
    for timepoint, scale in (("baseline", 1.0), ("followup", change)):
        ct, mask = imaging.render(o.seed, int(p["index"][j]), scale=scale, **base)
        ct_path = Path("imaging") / f"ct_{timepoint}" / f"{pid}.nii.gz"
        mask_path = Path("imaging") / f"mask_{timepoint}" / f"{pid}.nii.gz"
        imaging.write_nifti(ct, o.spacing, stage / ct_path)
        imaging.write_nifti(mask, o.spacing, stage / mask_path)
        manifest_rows.append({"patient_id": pid, "timepoint": timepoint, "image": str(ct_path), "mask": str(mask_path),
                              "day": 0 if timepoint == "baseline" else 60})
        if timepoint == "baseline":
            volume = float(mask.sum()) * voxel
            dicom_rng = np.random.default_rng([o.seed, 6_500_000, int(p["index"][j])])
            if dicom_rng.random() < o.dicom_fraction:
                folder = Path("imaging") / "dicom" / pid / "baseline"
                imaging.write_dicom_series(ct, o.spacing, stage / folder, pid, o.seed, "baseline")
                dicom_rows.append({"patient_id": pid, "timepoint": "baseline", "image": str(folder), "mask": str(mask_path)})
    return volume


def _summary(o: SynthOptions, truth: _Truth) -> dict:
    prob, response = truth.get("prob"), truth.get("response")
    xi, time, event = truth.get("xi"), truth.get("time"), truth.get("event")
    # Harrell's C is O(n^2): use at most 5,000 patients (the first ones; the order is random)
    m = min(len(xi), 5000)
    shares = {}
    for outcome, prefix in (("response", "eta"), ("survival", "xi")):
        var = {k: float(np.var(truth.get(f"{prefix}_{k}"))) for k in ("clinical", "omics", "imaging")}
        total = sum(var.values())
        shares[outcome] = {k: round(v / total, 4) for k, v in var.items()}
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": o.seed,
        "patients": o.patients,
        "options": {"images": o.images, "confounded": o.confounded, "image_size": list(o.image_size),
                    "spacing": list(o.spacing), "dicom_fraction": o.dicom_fraction, "rna_genes": o.rna_genes,
                    "ehr_formats": list(o.ehr_formats), "slides": o.slides},
        "oracle": {
            "auroc": round(float(roc_auc_score(response, prob)) if len(set(response)) == 2 else float("nan"), 4),
            "c_index": round(harrell_c(time[:m], event[:m], xi[:m]), 4),
            "c_index_patients": m,
        },
        "rates": {"response": round(float(response.mean()), 4), "death": round(float(event.mean()), 4),
                  "median_followup_months": round(float(np.median(time)), 2)},
        "modality_shares": shares,
        "modality_shares_note": "share of the variance of the true linear predictor carried by each modality's terms; "
                                "the treatment x mutation interaction counts as omics",
        "planted": {
            "response_logit": {"intercept": P.B0, **P.RESPONSE},
            "log_hazard": {**P.SURVIVAL, "weibull_shape": P.WEIBULL_K, "median_os_months": P.MEDIAN_OS_MONTHS},
            "where_to_find_them": {
                "ecog": "omop measurement concept 2000000103; tables/clinical_baseline.ecog",
                "stage": "omop measurement concept 2000000104; pathology/radiology notes; tables/clinical_baseline.stage",
                "hemoglobin_z": "omop measurement 3000963 (baseline, before the index date)",
                "cea_log_z": "omop measurement 2000000101 (baseline)",
                "immune_program": "omics/rna: " + ", ".join(P.PROGRAM_MARKERS["immune"][:6]) + ", ...",
                "proliferation_program": "omics/rna: " + ", ".join(P.PROGRAM_MARKERS["proliferation"][:6]) + ", ...",
                "targeted_x_EGFR": "omics/mutation.EGFR x outcomes.treatment (targeted = osimertinib)",
                "targeted_x_KRAS": "omics/mutation.KRAS x outcomes.treatment",
                "log_volume_z": "tumour volume in imaging/mask_baseline",
                "heterogeneity_z": "texture inside the tumour in imaging/ct_baseline",
                "EGFR_morphology": "with slides: a few tiles of EGFR-mutant patients' slides (pathology/); "
                                   "which ones: ground_truth_tiles.parquet",
            },
            "treatment_arms": list(P.ARMS),
            "treatment_assignment": ({"confounded_logit": P.CONFOUNDED_LOGIT} if o.confounded
                                     else {"randomised": 0.5}),
            "reference_arm": "chemo",
            "best_therapy_rule": "argmax of the true response probability; ties (no planted effect) go to chemo",
        },
    }


__all__ = ["SynthOptions", "generate"]
