"""Write TCGA-UCEC (MCAT's table and 5-fold splits) as tumorboard inputs.

    python examples/prepare_tcga_ucec.py       # into examples/data/tcga-ucec/ (git-ignored)

Reads ../shared/data/tcga-ucec-mcat (see its SOURCE.md). The table has one row
per slide; genomic values are identical across a patient's slides, so rows
are de-duplicated by case_id. Writes:
- outcomes.csv: patient_id, time (months), event (1 = death), fold (0-4: the
  MCAT split in which the patient is a validation case)
- clinical.csv: age, oncotree_code (is_female is 1 for everyone and left out)
- cnv.parquet (935 GISTIC-style copy-number genes), mutation.parquet (8,137
  binary genes), cnv_sig.parquet (the 123 signature genes of MCAT's "sig" runs)
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "tcga-ucec-mcat"
META = ["case_id", "slide_id", "site", "is_female", "oncotree_code", "age", "survival_months", "censorship", "train"]


def main(out: Path) -> None:
    if not SHARED.exists():
        sys.exit(f"{SHARED} is absent: nothing to prepare")
    out.mkdir(parents=True, exist_ok=True)
    full = pl.read_csv(SHARED / "tcga_ucec_all_clean_full.csv", infer_schema_length=0)
    full = full.unique("case_id", keep="first", maintain_order=True)
    fold_of: dict[str, int] = {}
    for k in range(5):
        split = pl.read_csv(SHARED / "splits" / f"splits_{k}.csv", infer_schema_length=0)
        for case in split["val"].drop_nulls().to_list():
            if case in fold_of:
                sys.exit(f"splits_{k}.csv: {case} is a validation case in two folds")
            fold_of[case] = k
    missing = [c for c in full["case_id"].to_list() if c not in fold_of]
    if missing:
        sys.exit(f"{len(missing)} cases are in no validation fold, e.g. {missing[:3]}")
    ids = pl.col("case_id").alias("patient_id")
    pl.DataFrame({"patient_id": full["case_id"], "time": full["survival_months"].cast(pl.Float64),
                  "event": 1 - full["censorship"].cast(pl.Float64).cast(pl.Int64),
                  "fold": [fold_of[c] for c in full["case_id"].to_list()]}).write_csv(out / "outcomes.csv")
    full.select(ids, pl.col("age").cast(pl.Float64), "oncotree_code").write_csv(out / "clinical.csv")
    cnv = [c for c in full.columns if c.endswith("_cnv")]
    mutation = [c for c in full.columns if c not in META and not c.endswith("_cnv")]
    full.select(ids, *[pl.col(c).cast(pl.Float64) for c in cnv]).write_parquet(out / "cnv.parquet")
    full.select(ids, *[pl.col(c).cast(pl.Float64).cast(pl.Int8) for c in mutation]).write_parquet(out / "mutation.parquet")
    sig = pl.read_csv(SHARED / "tcga_ucec_all_clean_sig.csv", infer_schema_length=0).unique("case_id", keep="first", maintain_order=True)
    sig_cnv = [c for c in sig.columns if c.endswith("_cnv")]
    sig.select(ids, *[pl.col(c).cast(pl.Float64) for c in sig_cnv]).write_parquet(out / "cnv_sig.parquet")
    events = int((1 - full["censorship"].cast(pl.Float64)).sum())
    print(f"tcga-ucec: {full.height} patients ({events} deaths), {len(cnv)} CNV genes, {len(mutation)} mutation genes, "
          f"{len(sig_cnv)} signature CNV genes -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "data" / "tcga-ucec")
