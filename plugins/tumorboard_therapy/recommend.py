"""What `tumorboard recommend RUN_DIR --patient ID` shows: therapies ranked, evidence, drivers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tumorboard.api import RunFiles, TumorboardError


@dataclass
class Recommendation:
    """One patient's therapies ranked by predicted benefit, with the evidence and the drivers."""

    patient_id: str
    ranked: pl.DataFrame  # therapy, outcome, low, high, effect, effect_low, effect_high
    recommended: str
    reference: str
    evidence: pl.DataFrame
    drivers: pl.DataFrame


def recommendation(run_dir: Path, patient: str) -> Recommendation:
    RunFiles(Path(run_dir))  # a finished run whose files match its manifest
    folder = Path(run_dir) / "treatment"
    if not (folder / "recommendations.parquet").is_file():
        raise TumorboardError(f"{run_dir}: no therapy results; add a [treatment] section to the spec and run it again")
    table = pl.read_parquet(folder / "recommendations.parquet")
    row = table.filter(pl.col("patient_id") == patient)
    if row.height == 0:
        raise TumorboardError(f"{run_dir}: no patient {patient!r} among the {table.height} patients of this run")
    r = row.row(0, named=True)
    arms = [c[len("outcome_"):] for c in table.columns if c.startswith("outcome_") and not c.endswith(("_low", "_high"))]
    reference = arms[0]
    ranked = pl.DataFrame({
        "therapy": arms,
        "outcome": [r[f"outcome_{a}"] for a in arms],
        "low": [r[f"outcome_{a}_low"] for a in arms],
        "high": [r[f"outcome_{a}_high"] for a in arms],
        "effect": [0.0 if a == reference else r[f"effect_{a}"] for a in arms],
        "effect_low": [None if a == reference else r[f"effect_{a}_low"] for a in arms],
        "effect_high": [None if a == reference else r[f"effect_{a}_high"] for a in arms],
    }).sort("outcome", descending=True)
    evidence = (pl.read_parquet(folder / "evidence.parquet").filter(pl.col("patient_id") == patient).drop("patient_id")
                if (folder / "evidence.parquet").is_file() else pl.DataFrame())
    drivers = pl.read_parquet(folder / "drivers.parquet").filter(pl.col("patient_id") == patient).drop("patient_id")
    return Recommendation(patient, ranked, r["recommended"], reference, evidence, drivers)
