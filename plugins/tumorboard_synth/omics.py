"""Omics layers for a chunk of patients: one patients x features matrix per layer.

The layer-level parameters (gene means, program loadings, CNV arms) are drawn
once per cohort from the seed; each chunk draws its patients' values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import expit

from . import params as P

PASSENGERS = (
    "TTN", "MUC16", "CSMD3", "RYR2", "LRP1B", "USH2A", "ZFHX4", "SPTA1", "FLG", "XIRP2", "CSMD1", "FAT3",
    "PCLO", "RYR3", "COL11A1", "ZNF536", "PAPPA2", "ANK2", "DNAH5", "FAT4", "PCDH15", "HMCN1", "NAV3", "SI",
    "APOB", "DNAH9", "ADGRV1", "CDH10", "KMT2D", "SMARCA4", "ARID1A", "RBM10", "CDKN2A", "NOTCH1", "ATM",
    "SETD2", "KMT2C", "PTPRD", "ROS1", "RB1",
)


@dataclass
class LayerParams:
    """Cohort-level parameters of every layer (drawn once from the seed)."""

    genes: list[str]
    mu: np.ndarray
    loadings: np.ndarray
    passenger_freq: np.ndarray
    cnv_genes: list[str]
    cnv_arm: np.ndarray
    cpg_mu: np.ndarray
    cpg_loadings: np.ndarray
    protein_genes: list[str]
    metab_mu: np.ndarray


def layer_params(seed: int, n_genes: int) -> LayerParams:
    rng = np.random.default_rng([seed, 7_000_001])
    named = list(dict.fromkeys([g for markers in P.PROGRAM_MARKERS.values() for g in markers] + list(P.DRIVERS)))
    genes = named + [f"GENE{i:05d}" for i in range(1, max(n_genes, len(named)) - len(named) + 1)]
    genes = genes[: max(n_genes, len(named))]
    g, k = len(genes), len(P.PROGRAMS)
    loadings = np.zeros((g, k))
    for j, program in enumerate(P.PROGRAMS):
        for gene in P.PROGRAM_MARKERS[program]:
            loadings[genes.index(gene), j] = rng.uniform(0.8, 1.2)
    # a weaker, diffuse membership for 30% of the other genes
    free = np.flatnonzero(loadings.sum(axis=1) == 0)
    chosen = free[rng.random(len(free)) < 0.3]
    loadings[chosen, rng.integers(0, k, len(chosen))] = rng.normal(0, 0.4, len(chosen))
    cnv_genes = genes[: min(P.N_CNV_GENES, g)]
    return LayerParams(
        genes=genes,
        mu=np.clip(rng.normal(6, 2, g), 0.5, 14),
        loadings=loadings,
        passenger_freq=rng.uniform(0.02, 0.10, len(PASSENGERS)),
        cnv_genes=cnv_genes,
        cnv_arm=np.sort(rng.integers(0, 40, len(cnv_genes))),
        cpg_mu=rng.normal(0, 2, P.N_CPG),
        cpg_loadings=np.where(rng.random((P.N_CPG, 2)) < 0.1, rng.choice([-0.8, 0.8], (P.N_CPG, 2)), 0.0),
        protein_genes=genes[: min(P.N_PROTEIN, g)],
        metab_mu=rng.normal(2, 1, P.N_METABOLITE),
    )


def _matrix(ids: list[str], keep: np.ndarray, names: list[str], values: np.ndarray, decimals: int | None) -> pl.DataFrame:
    values = values[keep]
    if decimals is not None:
        values = np.round(values, decimals)
    frame = pl.DataFrame(values, schema=names, orient="row")
    return frame.insert_column(0, pl.Series("patient_id", [i for i, k in zip(ids, keep, strict=True) if k]))


def build(rng: np.random.Generator, p: dict, lp: LayerParams, ids: list[str]) -> dict[str, pl.DataFrame]:
    """Every omics layer of one chunk; patients lacking a layer have no row in it."""
    n = len(ids)
    present = {layer: rng.random(n) >= frac for layer, frac in P.LAYER_MISSING.items()}
    programs = p["programs"]
    smoker = p["smoking"] != "never"

    drivers = np.stack([p["mutations"][g] for g in P.DRIVERS], axis=1)
    passengers = rng.random((n, len(PASSENGERS))) < lp.passenger_freq * np.where(smoker, 1.5, 0.7)[:, None]
    mutation = np.concatenate([drivers, passengers], axis=1).astype(np.int8)

    gain = rng.random((n, 40)) < 0.12
    loss = ~gain & (rng.random((n, 40)) < 0.12)
    arm_shift = gain * rng.uniform(0.3, 0.8, (n, 40)) - loss * rng.uniform(0.4, 1.0, (n, 40))
    cnv = arm_shift[:, lp.cnv_arm] + rng.normal(0, 0.12, (n, len(lp.cnv_genes)))
    if "EGFR" in lp.cnv_genes:
        focal = p["mutations"]["EGFR"] & (rng.random(n) < 0.25)
        cnv[:, lp.cnv_genes.index("EGFR")] += 1.5 * focal

    rna = lp.mu + programs @ lp.loadings.T + rng.normal(0, 0.6, (n, len(lp.genes)))
    rna = np.clip(rna, 0, None)

    cpg = expit(lp.cpg_mu + programs[:, 3:5] @ lp.cpg_loadings.T + rng.normal(0, 0.4, (n, P.N_CPG)))

    index = [lp.genes.index(g) for g in lp.protein_genes]
    z_rna = (rna[:, index] - lp.mu[index]) / 1.2
    protein = 0.6 * z_rna + rng.normal(0, 0.8, (n, len(index)))

    log_metab = lp.metab_mu + rng.normal(0, 0.5, (n, P.N_METABOLITE))
    log_metab[:, :10] += 0.35 * programs[:, [1]]
    log_metab[:, 10:20] += 0.35 * programs[:, [4]]

    return {
        "mutation": _matrix(ids, present["mutation"], list(P.DRIVERS) + list(PASSENGERS), mutation, None)
        .with_columns(pl.exclude("patient_id").cast(pl.Int8)),
        "cnv": _matrix(ids, present["cnv"], lp.cnv_genes, cnv, 3),
        "rna": _matrix(ids, present["rna"], lp.genes, rna, 3),
        "methylation": _matrix(ids, present["methylation"], [f"cg{i:08d}" for i in range(1, P.N_CPG + 1)], cpg, 4),
        "protein": _matrix(ids, present["protein"], lp.protein_genes, protein, 3),
        "metabolite": _matrix(ids, present["metabolite"], [f"metabolite_{i:03d}" for i in range(1, P.N_METABOLITE + 1)],
                              np.exp(log_metab), 4),
    }
