"""pyradiomics as the peer of imaging.radiomics: the same settings, the same cases, the same feature names.

Shared by benchmarks/radiomics.py (speed) and examples/radiomics_reference.py
(agreement). pyradiomics 3.0.1 does not build in an isolated environment;
install it after its build requirements:

    pip install numpy setuptools versioneer && pip install --no-build-isolation pyradiomics
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from tumorboard_imaging.radiomics import FAMILIES

BIN_WIDTH = 25.0
TEST_CASES = Path(__file__).resolve().parents[2] / "shared" / "data" / "pyradiomics-testcases"


def extractor(shift: float = 0.0):
    """pyradiomics with our settings: the seven families, 3-D, bin width 25, label 1, no resampling.

    Raises ImportError when pyradiomics is not installed.
    """
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    peer = featureextractor.RadiomicsFeatureExtractor(binWidth=BIN_WIDTH, label=1, additionalInfo=False,
                                                      voxelArrayShift=shift)
    peer.disableAllFeatures()
    for family in FAMILIES:
        peer.enableFeatureClassByName(family)
    return peer


def peer_features(peer, image: Path, mask: Path) -> dict[str, float]:
    """pyradiomics' values under our names (``family:Feature``)."""
    out = {}
    for key, value in peer.execute(str(image), str(mask)).items():
        if key.startswith("original_"):
            family, name = key.removeprefix("original_").split("_", 1)
            out[f"{family}:{name}"] = float(value)
    return out


def test_cases() -> list[tuple[str, Path, Path]]:
    """pyradiomics' own test cases brain1, brain2, breast1 (empty when ../shared/data is absent)."""
    if not TEST_CASES.is_dir():
        return []
    return [(name, TEST_CASES / f"{name}_image.nrrd", TEST_CASES / f"{name}_label.nrrd")
            for name in ("brain1", "brain2", "breast1")]


def synthetic_cases(count: int, folder: Path) -> list[tuple[str, Path, Path]]:
    """``count`` baseline CT volumes and tumour masks of the synthetic cohort (seed 3), as NIfTI files."""
    from tumorboard_synth import SynthOptions, generate

    cohort = generate(folder / "cohort", SynthOptions(patients=max(count * 2, 10), seed=3, rna_genes=100))
    rows = pl.read_csv(cohort / "imaging" / "manifest.csv").filter(pl.col("timepoint") == "baseline").head(count)
    return [(f"synthetic {pid}", cohort / image, cohort / mask)
            for pid, image, mask in rows.select("patient_id", "image", "mask").iter_rows()]
