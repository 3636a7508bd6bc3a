"""Biomarker -> therapy evidence rules, matched against each patient's mutation calls and copy number."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import polars as pl

from tumorboard.api import DataError, read_table

COLUMNS = ("gene", "alteration", "therapy", "direction", "evidence_level", "source")
ALTERATIONS = ("mutation", "amplification", "deletion")
DIRECTIONS = ("sensitive", "resistant")


def read_rules(path: Path) -> pl.DataFrame:
    """A rules table from CSV/TSV/Parquet, or TOML with ``[[rule]]`` tables; every field checked."""
    if path.suffix.lower() == ".toml":
        rules = tomllib.loads(path.read_text(encoding="utf-8")).get("rule", [])
        if not rules:
            raise DataError(f"{path}: no [[rule]] tables")
        frame = pl.DataFrame(rules)
    else:
        frame = read_table(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: evidence rules need columns {', '.join(COLUMNS)}; missing {', '.join(missing)}")
    frame = frame.with_columns(pl.col(c).cast(pl.String).str.strip_chars() for c in COLUMNS)
    for column, allowed in (("alteration", ALTERATIONS), ("direction", DIRECTIONS)):
        bad = frame.filter(~pl.col(column).str.to_lowercase().is_in(allowed))
        if bad.height:
            raise DataError(f"{path}: rule {bad['gene'][0]!r} has {column} {bad[column][0]!r}; "
                            f"expected one of {', '.join(allowed)}")
    return frame.with_columns(pl.col("alteration").str.to_lowercase(), pl.col("direction").str.to_lowercase())


def match(
    rules: pl.DataFrame,
    ids: list[str],
    mutation: pl.DataFrame | None,
    cnv: pl.DataFrame | None,
    id_column: str,
    therapy_arms: dict[str, str],
    amplification: float,
    deletion: float,
) -> tuple[pl.DataFrame, list[str]]:
    """Every (patient, rule) match, and the rule genes found in no omics matrix."""
    known = set()
    for matrix in (mutation, cnv):
        if matrix is not None:
            known |= set(matrix.columns) - {id_column}
    unknown = sorted(set(rules["gene"]) - known)
    rows = []
    want = set(ids)
    for rule in rules.iter_rows(named=True):
        gene, alteration = rule["gene"], rule["alteration"]
        matrix = mutation if alteration == "mutation" else cnv
        if matrix is None or gene not in matrix.columns:
            continue
        values = matrix[gene].cast(pl.Float64).to_numpy()
        hit = values >= 0.5 if alteration == "mutation" else values >= amplification if alteration == "amplification" \
            else values <= deletion
        for pid, value in zip(matrix[id_column].cast(pl.String).to_list(), np.where(hit, values, np.nan), strict=True):
            if pid in want and np.isfinite(value):
                rows.append({"patient_id": pid, "gene": gene, "alteration": alteration, "value": float(value),
                             "therapy": rule["therapy"], "arm": therapy_arms.get(rule["therapy"].lower(), ""),
                             "direction": rule["direction"], "evidence_level": rule["evidence_level"],
                             "source": rule["source"]})
    schema = {"patient_id": pl.String, "gene": pl.String, "alteration": pl.String, "value": pl.Float64,
              "therapy": pl.String, "arm": pl.String, "direction": pl.String, "evidence_level": pl.String,
              "source": pl.String}
    return pl.DataFrame(rows, schema=schema), unknown
