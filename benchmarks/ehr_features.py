"""ehr.polars against a straightforward pandas implementation of the same lab features.

    python benchmarks/ehr_features.py                       # 10 million events, 100,000 patients
    python benchmarks/ehr_features.py --events 1000000 --patients 10000

Builds a long events table (Parquet: patient id, date, code, value, unit) and
an index-date table, then computes in separate processes, one implementation
each, the same raw features: per lab code and look-back window (30d, 365d,
all), last / mean / min / max / least-squares slope per year / count of values
strictly before each patient's index date. Checks that both give the same
numbers, prints time and peak memory (max RSS of each process) and the ratios.
Last line: ``ehr_features speedup=X memory_ratio=Y`` with speedup = pandas time
/ ehr.polars time and memory_ratio = ehr.polars peak / pandas peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WINDOWS = {"30d": 30, "365d": 365, "all": None}
STATS = ("last", "mean", "min", "max", "slope", "n")


def build(folder: Path, n_events: int, n_patients: int, seed: int = 0) -> None:
    import polars as pl

    rng = np.random.default_rng(seed)
    patient = rng.integers(0, n_patients, n_events)
    codes = np.array([f"LAB{k:02d}" for k in range(40)])
    code = rng.integers(0, len(codes), n_events)
    day = rng.integers(0, 3 * 365, n_events) + 16000
    value = np.round(rng.normal(10 + code, 2 + code / 10), 3)
    ids = np.array([f"P{i:06d}" for i in range(n_patients)])
    pl.DataFrame({
        "patient_id": ids[patient], "time": day.astype("datetime64[D]"), "code": codes[code],
        "value": value, "unit": np.full(n_events, "mg/dL"),
    }).write_parquet(folder / "events.parquet")
    index = rng.integers(2 * 365, 3 * 365, n_patients) + 16000
    pl.DataFrame({"patient_id": ids, "index_date": index.astype("datetime64[D]")}).write_csv(folder / "index.csv")


def run_polars(folder: Path, out: Path) -> None:
    from tumorboard_ehr.modality import EhrPolars

    m = EhrPolars(events=folder / "events.parquet", index_table=folder / "index.csv",
                  windows=list(WINDOWS), families=["measurements"])
    raw = m._raw()
    np.save(out / "polars.npy", raw.matrix)
    (out / "polars.json").write_text(json.dumps({"ids": raw.ids, "columns": raw.columns}))


def run_pandas(folder: Path, out: Path) -> None:
    import pandas as pd

    ev = pd.read_parquet(folder / "events.parquet")
    ev["time"] = pd.to_datetime(ev["time"])  # Parquet dates arrive as Python date objects
    idx = pd.read_csv(folder / "index.csv", parse_dates=["index_date"])
    ev = ev.merge(idx, on="patient_id")
    ev = ev[ev["time"] < ev["index_date"]].copy()
    ev["delta"] = (ev["index_date"] - ev["time"]).dt.days
    ev["t"] = -ev["delta"] / 365.25
    ev["tv"] = ev["t"] * ev["value"]
    ev["tt"] = ev["t"] * ev["t"]
    ev = ev.sort_values(["patient_id", "code", "delta"], kind="stable")
    frames = []
    for window, days in WINDOWS.items():
        sub = ev if days is None else ev[ev["delta"] <= days]
        g = sub.groupby(["patient_id", "code"])
        agg = g.agg(last=("value", "first"), mean=("value", "mean"), min=("value", "min"), max=("value", "max"),
                    n=("value", "count"), t=("t", "mean"), tv=("tv", "mean"), tt=("tt", "mean"))
        var = agg["tt"] - agg["t"] ** 2
        agg["slope"] = ((agg["tv"] - agg["t"] * agg["mean"]) / var).where(var > 1e-12)
        wide = agg[list(STATS)].unstack("code")
        wide.columns = [f"measurement:{code}:{stat}@{window}" for stat, code in wide.columns]
        frames.append(wide)
    table = pd.concat(frames, axis=1)
    np.save(out / "pandas.npy", table.to_numpy(dtype=float))
    (out / "pandas.json").write_text(json.dumps({"ids": table.index.tolist(), "columns": table.columns.tolist()}))


def measured(which: str, folder: Path, out: Path) -> tuple[float, float]:
    """Run one implementation in its own process: (seconds, peak RSS in MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--run", which, "--folder", str(folder), "--out", str(out)])
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{which} failed with status {status}")
    return seconds, usage.ru_maxrss / 1024


def compare(out: Path) -> int:
    a = json.loads((out / "polars.json").read_text())
    b = json.loads((out / "pandas.json").read_text())
    A, B = np.load(out / "polars.npy"), np.load(out / "pandas.npy")
    rows = {pid: i for i, pid in enumerate(b["ids"])}
    cols = {c: j for j, c in enumerate(b["columns"])}
    assert set(a["columns"]) == set(b["columns"]), set(a["columns"]) ^ set(b["columns"])
    ri = np.array([rows[p] for p in a["ids"]])
    cj = np.array([cols[c] for c in a["columns"]])
    Bx = B[ri][:, cj]
    if not np.allclose(A, Bx, rtol=1e-6, atol=1e-6, equal_nan=True):
        bad = np.argwhere(~np.isclose(A, Bx, rtol=1e-6, atol=1e-6, equal_nan=True))[0]
        raise SystemExit(f"results differ at {a['ids'][bad[0]]} {a['columns'][bad[1]]}: {A[tuple(bad)]} vs {Bx[tuple(bad)]}")
    return A.size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--run", choices=["polars", "pandas"])
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.run:
        (run_polars if args.run == "polars" else run_pandas)(args.folder, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder, args.events, args.patients)
        size = (folder / "events.parquet").stat().st_size / 2**20
        print(f"events: {args.events:,} over {args.patients:,} patients ({size:.0f} MiB Parquet)")
        pd_s, pd_mb = measured("pandas", folder, folder)
        pl_s, pl_mb = measured("polars", folder, folder)
        cells = compare(folder)
        print(f"same numbers: {cells:,} feature values agree (rtol 1e-6)")
        print(f"pandas     {pd_s:7.1f} s  peak {pd_mb:7.0f} MiB")
        print(f"ehr.polars {pl_s:7.1f} s  peak {pl_mb:7.0f} MiB")
        print(f"ehr_features speedup={pd_s / pl_s:.2f} memory_ratio={pl_mb / pd_mb:.2f}")


if __name__ == "__main__":
    main()
