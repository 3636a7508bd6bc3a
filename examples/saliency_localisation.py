"""Where imaging.cnn's saliency lies: the share of positive integrated-gradients mass inside the tumour.

    python examples/saliency_localisation.py [--patients 800]

Generates the synthetic cohort with CT volumes, trains imaging.cnn on 80% of
the patients (fixed 32 x 32 x 32 mm field of view centred on the tumour) for
three targets with a known home in the image (response, the planted tumour
volume, the planted texture heterogeneity), computes explain.saliency's maps
on the held-out 20%, and writes the table in docs/explanations.md: held-out
performance of the network's own head, the mean share of positive
attribution inside the mask, the mask's share of the input and of the voxels
that can carry attribution (those above the black baseline: chance), and the
share of patients whose map puts at least 60% inside.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

DOCS = Path(__file__).resolve().parent.parent / "docs" / "explanations.md"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=800)
    args = parser.parse_args()

    from sklearn.metrics import roc_auc_score

    from tumorboard.api import Target, component_class
    from tumorboard._engine.cohort import load_cohort
    from tumorboard_synth import SynthOptions, generate

    with tempfile.TemporaryDirectory() as tmp:
        folder = generate(Path(tmp) / "c", SynthOptions(patients=args.patients, seed=4))
        cohort = load_cohort(folder / "outcomes.csv", id_column="patient_id", task="binary", target="response")
        ids = list(cohort.ids)
        truth = pl.read_parquet(folder / "ground_truth.parquet")
        n = int(0.8 * len(ids))
        targets = {"response": cohort.target,
                   "log tumour volume": Target("regression", np.log(truth["planted_volume_mm3"].to_numpy()), None, ()),
                   "texture heterogeneity": Target("regression", truth["heterogeneity"].to_numpy(), None, ())}
        rows = []
        for name, y in targets.items():
            start = time.perf_counter()
            cnn = component_class("modality", "imaging.cnn")(
                manifest=folder / "imaging/manifest.csv", folder=folder, time_point="baseline", window=[-150.0, 250.0],
                field="fixed", spacing=(1.0, 1.0, 2.0), shape=[16, 32, 32], epochs=60, patience=15, output_head=True,
                cache=Path(tmp) / "cache")
            cnn.fit(ids[:n], y.take(np.arange(n)))
            maps = cnn.saliency(ids[n:]).images["imaging.cnn"]
            inside = np.array([float(m["inside"]) for m in maps.values()])
            share = np.array([float(m["mask_share"]) for m in maps.values()])
            support = np.array([float(m["support_share"]) for m in maps.values()])
            block = cnn.transform(ids[n:])
            head, ok = block.values[:, -1], block.presence
            held = y.values[n:][ok]
            perf = (f"AUROC {roc_auc_score(held, head[ok]):.3f}" if name == "response"
                    else f"r = {np.corrcoef(held, head[ok])[0, 1]:.3f}")
            rows.append(f"| {name} | {perf} | {np.nanmean(inside):.3f} (median {np.nanmedian(inside):.3f}) | "
                        f"{np.nanmean(share):.3f} | {np.nanmean(support):.3f} | "
                        f"{np.nanmean(inside) / np.nanmean(support):.1f}x | {np.mean(inside >= 0.6):.2f} |")
            print(rows[-1], f"{time.perf_counter() - start:.0f} s", flush=True)
    table = ("| network trained on | its head on held-out patients | positive mass inside the mask | "
             "mask's share of the input | mask's share of the voxels above the baseline (chance) | ratio to chance | "
             "patients with >= 60% inside |\n| --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")
    text = DOCS.read_text(encoding="utf-8")
    text = re.sub(r"(<!-- saliency table -->\n).*?(<!-- end -->)", lambda m: m.group(1) + table + m.group(2), text,
                  flags=re.DOTALL)
    DOCS.write_text(text, encoding="utf-8")
    print(f"table written to {DOCS}")


if __name__ == "__main__":
    main()
