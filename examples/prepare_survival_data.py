"""Write the public survival data sets as tumorboard inputs (outcomes + features, with split labels).

    python examples/prepare_survival_data.py            # into examples/data/ (git-ignored)

- GBSG2 and the veterans' lung cancer trial ship inside scikit-survival.
- So does the breast cancer expression set (198 patients, 76 genes, 4 clinical
  covariates, distant metastasis): written as two feature tables, genes.csv and
  clinical.csv, for multimodal specs (examples/survival-breast-cancer.toml).
- METABRIC and Rotterdam/GBSG come from ../shared/data/deepsurv-metabric-gbsg (DeepSurv's
  published train/test split); skipped with a message when that folder is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "deepsurv-metabric-gbsg"


def write(name: str, features: pl.DataFrame, time, event, split: list[str] | None, out: Path,
          tables: dict[str, pl.DataFrame] | None = None) -> None:
    """outcomes.csv and features.csv (or, with ``tables``, one CSV per named table) with patient ids."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"{name.upper()}-{i:05d}" for i in range(features.height)]
    outcomes = pl.DataFrame({"patient_id": ids, "time": time, "event": event})
    if split is not None:
        outcomes = outcomes.with_columns(split=pl.Series(split))
    outcomes.write_csv(folder / "outcomes.csv")
    tables = tables or {"features.csv": features}
    covariates = sum(table.width for table in tables.values())
    for file_name, table in tables.items():
        table.insert_column(0, pl.Series("patient_id", ids)).write_csv(folder / file_name)
    print(f"{name}: {features.height} patients, {covariates} covariates -> {folder}")


def write_breast_cancer(out: Path) -> None:
    """scikit-survival's breast cancer set as outcomes plus a gene table and a clinical table."""
    from sksurv.datasets import load_breast_cancer

    X, y = load_breast_cancer()
    genes = [c for c in X.columns if c.startswith("X")]
    frame = pl.DataFrame({c: (X[c].astype(str).tolist() if str(X[c].dtype) == "category" else X[c].to_numpy())
                          for c in X.columns})
    write("breast-cancer", frame, y["t.tdm"], y["e.tdm"].astype(int), None, out,
          tables={"genes.csv": frame.select(genes), "clinical.csv": frame.drop(genes)})


def main(out: Path) -> None:
    from sksurv.datasets import load_gbsg2, load_veterans_lung_cancer

    for name, loader in (("gbsg2", load_gbsg2), ("veterans", load_veterans_lung_cancer)):
        X, y = loader()
        # column by column: categorical columns become text (tabular.file one-hot encodes them)
        frame = pl.DataFrame({c: (X[c].astype(str).tolist() if str(X[c].dtype) == "category" else X[c].to_numpy())
                              for c in X.columns})
        event_field, time_field = y.dtype.names
        write(name, frame, y[time_field], y[event_field].astype(int), None, out)
    write_breast_cancer(out)
    if not SHARED.is_dir():
        print(f"skipping METABRIC and GBSG: {SHARED} is absent")
        return
    for name in ("metabric", "gbsg"):
        parts = []
        for split in ("train", "test"):
            part = pl.read_csv(SHARED / f"{name}_{split}.csv").with_columns(split=pl.lit(split))
            parts.append(part)
        frame = pl.concat(parts)
        zero = int((frame["duration"] <= 0).sum())
        if zero:
            # tumorboard requires times > 0; a same-day event or censoring becomes 0.01
            # months, which still precedes every other recorded time
            print(f"{name}: {zero} patient(s) with duration 0 set to 0.01")
            frame = frame.with_columns(pl.when(pl.col("duration") <= 0).then(0.01).otherwise(pl.col("duration")).alias("duration"))
        features = frame.drop("duration", "event", "split")
        write(f"deepsurv-{name}", features, frame["duration"], frame["event"].cast(pl.Int64), frame["split"].to_list(), out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "data")
