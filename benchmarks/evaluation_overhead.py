"""What a tumorboard run costs beyond the model fitting inside it, against the bare peer.

    python benchmarks/evaluation_overhead.py                 # flchain, veterans, whas500
    python benchmarks/evaluation_overhead.py --datasets flchain --workers 1

For each data set bundled with scikit-survival (no download): the cohort and a
feature table are written to a temporary folder with a fixed 5-fold split
(stratified by event, seed 0), and two programs run, each as its own process
(start-up and imports included in both):

- tumorboard: ``tumorboard run spec.toml`` with tabular.file (median
  imputation with missing indicators, standardised) and model.coxnet
  (elastic net 0.5, alpha picked by a 3-fold inner CV over a 30-penalty path),
  5 folds, 1,000 bootstrap replicates, the default survival metrics (Harrell's
  and Uno's C, time-dependent AUC, integrated Brier score), the refit on all
  patients and the report;
- the peer: scikit-survival's own 5-fold loop on the same folds with the same
  preprocessing and model settings (scikit-learn's imputer and scaler,
  CoxnetSurvivalAnalysis with the same inner CV), Harrell's C on the pooled
  out-of-fold risks.

flchain: drop ``chapter`` (it records the cause of death); its follow-up
times of 0 days become 0.5 (tumorboard requires times > 0; both programs read
the same file). Prints both wall
times, the ratio and both C-indices per data set; the last line is
``eval_overhead ratio=X`` for flchain (target X <= 1.5 on 2 cores; veterans
and whas500: <= 2.0).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FOLDS = 5
L1_RATIO, N_ALPHAS, ALPHA_MIN_RATIO, INNER_FOLDS, SEED = 0.5, 30, 0.01, 3, 0

SPEC = """\
[run]
name = "{name}"
task = "survival"
seed = {seed}
output = "run"

[cohort]
outcomes = "cohort.csv"
id = "patient_id"
target = ["time", "event"]

[[modality]]
name = "clinical"
plugin = "tabular.file"
options = {{ path = "features.csv" }}

[model]
plugin = "model.coxnet"
options = {{ l1_ratio = {l1}, n_alphas = {n_alphas}, alpha_min_ratio = {ratio}, inner_folds = {inner} }}

[evaluation]
strategy = "predefined"
split_file = "folds.csv"
bootstrap = 1000
"""


def load(name: str):
    """Features (numeric, one-hot for categories, gaps kept) and the structured survival target."""
    import pandas as pd
    from sksurv import datasets

    if name == "flchain":
        X, y = datasets.load_flchain()
        X = X.drop(columns=["chapter"])
    elif name == "veterans":
        X, y = datasets.load_veterans_lung_cancer()
    elif name == "whas500":
        X, y = datasets.load_whas500()
    else:
        raise SystemExit(f"unknown data set {name!r}")
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    X = pd.get_dummies(X, columns=categorical, dtype=float).astype(float)
    return X, y


def write_inputs(name: str, folder: Path) -> None:
    import pandas as pd
    from sklearn.model_selection import StratifiedKFold

    X, y = load(name)
    event_field, time_field = y.dtype.names
    y = y.copy()
    # flchain holds follow-up times of 0 days, which tumorboard refuses (survival time must be > 0):
    # both programs read the same cohort file with those set to half a day
    y[time_field] = np.where(y[time_field] <= 0, 0.5, y[time_field])
    ids = [f"P{i:06d}" for i in range(len(X))]
    features = X.copy()
    features.insert(0, "patient_id", ids)
    features.to_csv(folder / "features.csv", index=False)
    pd.DataFrame({"patient_id": ids, "time": y[time_field], "event": y[event_field].astype(int)}).to_csv(
        folder / "cohort.csv", index=False)
    fold = np.zeros(len(X), dtype=int)
    for k, (_, test) in enumerate(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(X, y[event_field])):
        fold[test] = k + 1
    pd.DataFrame({"patient_id": ids, "fold": fold}).to_csv(folder / "folds.csv", index=False)
    (folder / "spec.toml").write_text(SPEC.format(name=name, seed=SEED, l1=L1_RATIO, n_alphas=N_ALPHAS,
                                                  ratio=ALPHA_MIN_RATIO, inner=INNER_FOLDS))


def peer(folder: Path) -> dict[str, float]:
    """scikit-survival's bare loop on the written inputs (run in its own process by main)."""
    import pandas as pd
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.metrics import concordance_index_censored
    from sksurv.util import Surv

    features = pd.read_csv(folder / "features.csv").drop(columns=["patient_id"]).to_numpy(dtype=float)
    cohort = pd.read_csv(folder / "cohort.csv")
    fold = pd.read_csv(folder / "folds.csv")["fold"].to_numpy()
    y = Surv.from_arrays(event=cohort["event"].to_numpy().astype(bool), time=cohort["time"].to_numpy(dtype=float))
    risk = np.zeros(len(y))
    for k in range(1, FOLDS + 1):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        prep = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
        Xtr, Xte = prep.fit_transform(features[train]), prep.transform(features[test])
        ytr = y[train]
        alphas = CoxnetSurvivalAnalysis(l1_ratio=L1_RATIO, n_alphas=N_ALPHAS,
                                        alpha_min_ratio=ALPHA_MIN_RATIO).fit(Xtr, ytr).alphas_
        scores = np.zeros(len(alphas))
        inner = StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=SEED)
        for itr, ite in inner.split(Xtr, ytr["event"]):
            path = CoxnetSurvivalAnalysis(l1_ratio=L1_RATIO, alphas=alphas).fit(Xtr[itr], ytr[itr])
            for j, a in enumerate(alphas):
                scores[j] += concordance_index_censored(ytr["event"][ite], ytr["time"][ite],
                                                        path.predict(Xtr[ite], alpha=a))[0]
        best = float(alphas[int(np.argmax(scores))])
        model = CoxnetSurvivalAnalysis(l1_ratio=L1_RATIO, alphas=[best], fit_baseline_model=True).fit(Xtr, ytr)
        risk[test] = model.predict(Xte)
    return {"c_index": float(concordance_index_censored(y["event"], y["time"], risk)[0])}


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["veterans", "whas500", "flchain"])
    parser.add_argument("--workers", type=int, default=None, help="tumorboard --workers (default: the spec's auto)")
    parser.add_argument("--peer", type=Path, help=argparse.SUPPRESS)  # internal: run the peer in this process
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(peer(args.peer)))
        return
    tumorboard = Path(sys.executable).with_name("tumorboard")
    ratios = {}
    print(f"{'data set':10} {'patients':>8} {'tumorboard s':>13} {'peer s':>8} {'ratio':>6} {'C ours':>7} {'C peer':>7}")
    for name in args.datasets:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_inputs(name, folder)
            command = [str(tumorboard), "run", "spec.toml", "--quiet"]
            if args.workers:
                command += ["--workers", str(args.workers)]
            ours = timed(command, folder)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--peer", str(folder)], capture_output=True, text=True,
                                  check=True)
            theirs = time.perf_counter() - start
            peer_c = json.loads(done.stdout.strip().splitlines()[-1])["c_index"]
            metrics = json.loads((folder / "run" / "metrics.json").read_text())
            stages = json.loads((folder / "run" / "provenance.json").read_text())["stages_seconds"]
            patients = metrics["n"] if "n" in metrics else metrics["overall"]["c_index"]["n"]
            ratios[name] = ours / theirs
            print(f"{name:10} {patients:>8} {ours:>13.1f} {theirs:>8.1f} {ours / theirs:>6.2f} "
                  f"{metrics['overall']['c_index']['value']:>7.4f} {peer_c:>7.4f}")
            slowest = sorted(stages.items(), key=lambda kv: -kv[1])[:4]
            print("    stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in slowest))
    if "flchain" in ratios:
        print(f"eval_overhead ratio={ratios['flchain']:.2f}")


if __name__ == "__main__":
    main()
