"""ehr.polars reading the same records as OMOP CDM, MEDS and FHIR R4: time to features, and agreement.

    python benchmarks/ehr_formats.py                  # 2,000 synthetic patients
    python benchmarks/ehr_formats.py --patients 500

Generates the synthetic cohort with its EHR in all three formats from one
seed (``tumorboard synth --ehr meds,fhir``), then computes the raw features
from each input (the default windows, index = first therapy) in a fresh
cache and prints: events or resources read, seconds, the ratio to the OMOP
path (the baseline, measured in the same run), and the largest relative
difference of the features against OMOP. Last line: ``ehr_formats
meds_ratio=X fhir_ratio=Y fhir_resources_per_s=Z``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

THERAPY = [2000000201, 2000000202, 2000000203]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=2000)
    args = parser.parse_args()
    from tumorboard_ehr.modality import EhrPolars, _compute, _read_source
    from tumorboard_synth import SynthOptions, generate

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cohort = generate(Path(tmp) / "c", SynthOptions(patients=args.patients, seed=0, images=False, rna_genes=100,
                                                         ehr_formats=("omop", "meds", "fhir")))
        print(f"{args.patients} patients written as OMOP, MEDS and FHIR in {time.perf_counter() - start:.1f} s")
        sources = {
            "omop": {"omop_dir": cohort / "omop"},
            "meds": {"meds_dir": cohort / "meds", "subject_ids": cohort / "meds" / "subject_ids.parquet"},
            "fhir": {"fhir_dir": cohort / "fhir"},
        }
        results = {}
        for name, options in sources.items():
            _compute.cache_clear()
            _read_source.cache_clear()
            start = time.perf_counter()
            raw = EhrPolars(**options, index_concepts=THERAPY)._raw()
            results[name] = (time.perf_counter() - start, raw)
        # a run with workers reads FHIR files in parts on its worker processes: the same on this machine's cores
        from tumorboard._engine.execution import Executor, using

        _compute.cache_clear()
        _read_source.cache_clear()
        workers = os.cpu_count() or 1
        with using(Executor("local", workers=workers, threads=1)):
            start = time.perf_counter()
            EhrPolars(**sources["fhir"], index_concepts=THERAPY)._raw()
            parallel = time.perf_counter() - start
        base_seconds, base = results["omop"]
        # every resource of every Bundle (the Bundle's own resourceType not counted)
        resources = sum(f.read_text().count('"resourceType"') - 1 for f in (cohort / "fhir").glob("*.json"))
        for name, (seconds, raw) in results.items():
            rows = [raw.row_of[i] for i in base.ids]
            cols = [raw.columns.index(c) for c in base.columns]
            other = raw.matrix[rows][:, cols]
            scale = np.maximum(np.nanmax(np.abs(base.matrix), axis=0, initial=0), 1e-6)  # a column of zeros: 1e-6
            gap = np.nanmax(np.abs(other - base.matrix) / scale) if name != "omop" else 0.0
            extra = f", {resources:,} resources" if name == "fhir" else ""
            print(f"  {name}: {seconds:6.2f} s ({seconds / base_seconds:5.1f}x OMOP){extra}; {len(raw.ids)} patients x "
                  f"{len(raw.columns)} features; largest difference from OMOP {gap:.1e} of the feature's range")
        print(f"  fhir on {workers} worker processes: {parallel:6.2f} s ({parallel / base_seconds:5.1f}x OMOP)")
        meds_ratio = results["meds"][0] / base_seconds
        fhir_ratio = results["fhir"][0] / base_seconds
        print(f"ehr_formats meds_ratio={meds_ratio:.2f} fhir_ratio={fhir_ratio:.1f} "
              f"fhir_resources_per_s={resources / results['fhir'][0]:.0f} "
              f"fhir_parallel_ratio={parallel / base_seconds:.1f}")


if __name__ == "__main__":
    main()
