"""Wall time and peak memory of an EHR + omics run as the cohort grows.

    python benchmarks/scaling.py --patients 10000 30000 100000 --workers 1

For each size: ``tumorboard synth`` writes the synthetic cohort without images
(OMOP CDM tables, mutation and RNA matrices; ``--rna-genes``), then
``tumorboard run`` fits clinical (tabular.file), EHR (ehr.polars on the OMOP
tables), mutation and RNA (omics.pca) with fusion.concat and model.logistic,
5 folds, 1,000 bootstrap replicates, on ``--workers``. Each step is its own
process; peak memory is the largest resident set among that step's processes
(with several workers: the largest worker's or the main process's). One line per
size: patients, synth seconds, run seconds, run peak GiB, seconds per 1,000
patients, and the run's slowest stages.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """\
[run]
name = "scaling"
task = "binary"
seed = 11
output = "run"

[cohort]
outcomes = "outcomes.csv"
id = "patient_id"
target = "response"
subgroups = ["sex"]

[[modality]]
name = "clinical"
plugin = "tabular.file"
options = { path = "tables/clinical_baseline.csv" }

[[modality]]
name = "ehr"
plugin = "ehr.polars"
options = { omop_dir = "omop", index_concepts = [2000000201, 2000000202, 2000000203] }

[[modality]]
name = "mutation"
plugin = "tabular.file"
options = { path = "omics/mutation.parquet", scale = false, missing_indicators = false }

[[modality]]
name = "rna"
plugin = "omics.pca"
options = { components = 16, layers = [{ name = "rna", path = "omics/rna.parquet" }] }

[model]
plugin = "model.logistic"
options = { C = 0.02 }

[evaluation]
folds = 5
metrics = ["auroc", "auprc", "accuracy", "brier"]
"""


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Seconds and the peak resident memory (GiB) of the command's largest process.

    The peak is measured in a helper process that runs only this command, so
    it is this command's own figure (``resource.RUSAGE_CHILDREN`` of this
    process would be the running maximum over every command so far).
    """
    probe = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(done.returncode)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe, *command], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])  # ru_maxrss is in KiB on Linux
    return seconds, peak_kib / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rna-genes", type=int, default=500)
    args = parser.parse_args()
    tumorboard = str(Path(sys.executable).with_name("tumorboard"))
    print(f"{'patients':>9} {'synth s':>8} {'run s':>8} {'peak GiB':>9} {'s / 1k pts':>11}  slowest stages")
    for n in args.patients:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "cohort"
            synth_s, _ = timed([tumorboard, "synth", "--out", str(folder), "--patients", str(n), "--no-images",
                                "--rna-genes", str(args.rna_genes)], Path(tmp))
            (folder / "spec.toml").write_text(SPEC)
            run_s, peak = timed([tumorboard, "run", "spec.toml", "--quiet", "--workers", str(args.workers)], folder)
            stages = json.loads((folder / "run" / "provenance.json").read_text())["stages_seconds"]
            slowest = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])[:3])
            print(f"{n:>9} {synth_s:>8.1f} {run_s:>8.1f} {peak:>9.2f} {run_s / n * 1000:>11.2f}  {slowest}",
                  flush=True)


if __name__ == "__main__":
    main()
