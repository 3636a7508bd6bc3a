"""Validation C-index on MCAT's five TCGA-UCEC folds for the omics specs, beside the published figures.

    python examples/prepare_tcga_ucec.py
    python examples/tcga_ucec_benchmarks.py       # rewrites the table in docs/omics.md

Runs examples/tcga-ucec-autoencoder.toml and tcga-ucec-pca.toml with both
layers and with each layer alone (the spec's layer list edited, as a lab
would), through the same engine as `tumorboard run`. Reports the per-fold
C-index mean +/- sample SD (metrics.json's per_fold) and the pooled
out-of-fold C-index with its bootstrap 95% CI.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from spec_variants import run_variant

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "omics.md"
SPECS = {"omics.autoencoder (Cox head) + model.coxnet": "tcga-ucec-autoencoder.toml",
         "omics.pca + model.coxnet": "tcga-ucec-pca.toml"}
PUBLISHED = ("| published: SNN, genomic only (MCAT's `sig` CNV input) | | 0.493 ± 0.096 | | |\n"
             "| published: MCAT, genomics + whole-slide images | | 0.622 ± 0.019 | | |\n")


def main() -> None:
    rows = []
    for label, spec_name in SPECS.items():
        raw = tomllib.loads((HERE / spec_name).read_text(encoding="utf-8"))
        if not (HERE / raw["cohort"]["outcomes"]).exists():
            raise SystemExit("run examples/prepare_tcga_ucec.py first (it needs ../shared/data/tcga-ucec-mcat)")
        layers = raw["modality"][0]["options"]["layers"]
        for subset in (layers, *[[layer] for layer in layers]):
            raw["modality"][0]["options"]["layers"] = subset
            result, seconds = run_variant(spec_name, raw)
            folds = result.metrics["per_fold"]["c_index"]
            pooled = result.metrics["overall"]["c_index"]
            names = " + ".join(layer["name"] for layer in subset)
            rows.append(f"| {label} | {names} | {folds['mean']:.3f} ± {folds['sd']:.3f} | "
                        f"{pooled['value']:.3f} ({pooled['ci_low']:.3f}–{pooled['ci_high']:.3f}) | {seconds:.0f} s |")
            print(rows[-1], flush=True)
    table = ("| spec | layers | C-index, mean ± SD over the 5 folds | pooled out-of-fold C-index (95% CI) | wall |\n"
             "| --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n" + PUBLISHED)
    text = DOCS.read_text(encoding="utf-8")
    text = re.sub(r"(<!-- tcga-ucec table -->\n).*?(<!-- end -->)", lambda m: m.group(1) + table + m.group(2), text, flags=re.DOTALL)
    DOCS.write_text(text, encoding="utf-8")
    print(f"table written to {DOCS}")


if __name__ == "__main__":
    main()
