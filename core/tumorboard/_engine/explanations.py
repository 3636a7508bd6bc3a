"""What the engine and the reports derive from an explainer's attributions: modality shares."""

from __future__ import annotations

import numpy as np
import polars as pl

from .data import Attribution


def modality_shares(attribution: Attribution) -> tuple[pl.DataFrame, dict[str, float]] | None:
    """Each modality's share of the absolute attribution, per patient and over the cohort.

    A patient's share of modality m is the sum of |attribution| over m's
    features divided by the sum over every feature (rows sum to 1; a patient
    whose attributions are all 0 gets 0 everywhere). The overall share pools
    every patient's absolute attributions. None when the attribution has no
    per-patient values, no feature-to-modality map, or no features.
    """
    if attribution.per_patient is None or not attribution.sources or attribution.ids is None:
        return None
    magnitude = np.abs(np.asarray(attribution.per_patient, dtype=np.float64))
    sources = np.asarray(attribution.sources)
    names = list(dict.fromkeys(attribution.sources))
    by_modality = np.stack([magnitude[:, sources == m].sum(axis=1) for m in names], axis=1)
    totals = by_modality.sum(axis=1, keepdims=True)
    per_patient = np.divide(by_modality, totals, out=np.zeros_like(by_modality), where=totals > 0)
    frame = pl.DataFrame(per_patient, schema=names, orient="row")
    frame.insert_column(0, pl.Series("patient_id", list(attribution.ids)))
    pooled = by_modality.sum(axis=0)
    overall = {m: float(v / pooled.sum()) if pooled.sum() > 0 else 0.0 for m, v in zip(names, pooled, strict=True)}
    return frame, overall
