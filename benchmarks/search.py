"""Nested hyperparameter search on the synthetic cohort: the gain over the defaults, and its wall time
on 1 and 2 workers.

    python benchmarks/search.py                        # a 1,000-patient cohort, 40 trials
    python benchmarks/search.py --cohort DIR --trials 10

The cohort (clinical, mutation and RNA of `tumorboard synth --patients 1000 --no-images`, seed 0) is
run with examples/synthetic-search.toml twice: as written (the search over the logistic model's C,
the RNA encoder -- raw standardised genes or principal components, and how many -- and the fusion,
concatenation or stacking: one search per outer fold on its training patients, one for the refit),
and without its [search] sections (the defaults: raw genes, concatenation, C = 1). Both use the same
five outer folds. Each run is its own `tumorboard run` process (start-up included in the wall time).
The searched run is repeated on 2 workers (one BLAS thread each) and on 1 worker with one thread: those
two must be the same bytes (trials and predictions).

Prints both outer-fold AUROCs, the paired bootstrap CI of the gain (1,000 replicates over patients),
each fold's selection, the wall times, and last `search speedup(2 workers)=X`.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "examples" / "synthetic-search.toml"
TUMORBOARD = [sys.executable, "-m", "tumorboard"]


def without_search(text: str) -> str:
    """The spec's defaults: everything before its [search] section."""
    return text[: re.search(r"(?m)^\[search\]", text).start()].rstrip() + "\n"  # type: ignore[union-attr]


def timed_run(folder: Path, spec_text: str, name: str, workers: int) -> tuple[float, Path]:
    spec = folder / f"{name}.toml"
    spec.write_text(re.sub(r'(?m)^output = ".*"$', f'output = "runs/{name}"', spec_text), encoding="utf-8")
    start = time.perf_counter()
    subprocess.run([*TUMORBOARD, "run", str(spec), "--workers", str(workers)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start, folder / "runs" / name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cohort", type=Path, help="a synthetic cohort folder (default: generate 1,000 patients)")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--patients", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tumorboard-search-") as tmp:
        folder = args.cohort or Path(tmp) / "cohort"
        if args.cohort is None:
            subprocess.run([*TUMORBOARD, "synth", "--patients", str(args.patients), "--no-images", "--seed", "0",
                            "--out", str(folder)], check=True, stdout=subprocess.DEVNULL)
        searched_text = re.sub(r"(?m)^trials = \d+$", f"trials = {args.trials}", SPEC.read_text(encoding="utf-8"))

        t_default, default_dir = timed_run(folder, without_search(searched_text), "defaults", 1)
        t1, one = timed_run(folder, searched_text, "search-1-worker", 1)
        t2, two = timed_run(folder, searched_text, "search-2-workers", 2)
        # the same per-task thread budget as each of the 2 workers': the same bytes (docs/scaling.md)
        budget = searched_text.replace("\n[search]\n", "\n[execution]\nthreads_per_worker = 1\n\n[search]\n", 1)
        t1b, one_b = timed_run(folder, budget, "search-1-worker-1-thread", 1)

        def same(a: Path, b: Path) -> tuple[bool, bool]:
            trials = [pl.read_parquet(r / "search" / "trials.parquet").drop("seconds") for r in (a, b)]
            return trials[0].equals(trials[1]), pl.read_parquet(a / "predictions.parquet").equals(
                pl.read_parquet(b / "predictions.parquet"))

        if same(one_b, two) != (True, True):
            raise SystemExit("the searched run on 2 workers differs from the run on 1 worker under the same budget")
        trials_same, predictions_same = same(one, two)

        from tumorboard._engine.data import Target
        from tumorboard._engine.metrics import paired_difference

        base = pl.read_parquet(default_dir / "predictions.parquet").sort("patient_id")
        tuned = pl.read_parquet(one / "predictions.parquet").sort("patient_id")
        assert base["patient_id"].equals(tuned["patient_id"]) and base["fold"].equals(tuned["fold"])
        y = Target("binary", base["y_true"].to_numpy().astype(np.int64), classes=("0", "1"))
        gain = paired_difference("binary", "auroc", y, [tuned["y_pred"].to_numpy()], [base["y_pred"].to_numpy()],
                                 bootstrap=1000, confidence=0.95, rng=np.random.default_rng(0))
        m_base = json.loads((default_dir / "metrics.json").read_text())
        m_tuned = json.loads((one / "metrics.json").read_text())
        print(f"patients {len(base)}, {args.trials} trials per search, 5 outer folds + the refit")
        for label, m in (("defaults", m_base), ("searched", m_tuned)):
            a = m["overall"]["auroc"]
            pf = m["per_fold"]["auroc"]
            print(f"{label:9s} AUROC {a['value']:.3f} ({a['ci_low']:.3f}-{a['ci_high']:.3f}); per fold "
                  f"{pf['mean']:.3f} +/- {pf['sd']:.3f}")
        print(f"gain      AUROC {gain.value:+.3f} (paired 95% CI {gain.ci_low:+.3f} to {gain.ci_high:+.3f})")
        for label, entry in m_tuned["search"]["searches"].items():
            shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry["params"].items())
            print(f"  {label}: inner {entry['inner_score']:.3f} ({entry['complete']} complete, {entry['pruned']} "
                  f"pruned, {entry['fail']} failed): {shown}")
        print(f"importance (refit's search): {m_tuned['search']['importance']}")
        stages = json.loads((one / "provenance.json").read_text())["stages_seconds"]
        search_stage = next(v for k, v in stages.items() if k.startswith("search"))
        print(f"wall: defaults {t_default:.1f} s; searched, 1 worker {t1:.1f} s (search stage {search_stage:.1f} s); "
              f"2 workers {t2:.1f} s; 1 worker with 1 thread {t1b:.1f} s")
        print("1 worker with 1 thread and 2 workers: trials and predictions the same bytes; 1 worker with 2 BLAS "
              f"threads: trials {'the same' if trials_same else 'differ'}, predictions "
              f"{'the same' if predictions_same else 'differ in the last digits'}")
        print(f"search speedup(2 workers)={t1 / t2:.2f}")


if __name__ == "__main__":
    main()
