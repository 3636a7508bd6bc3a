"""BreastMNIST with imaging.cnn: a few backbones trained on train, selected on the official validation set,
scored on test; writes the table in docs/imaging.md.

    python examples/prepare_breastmnist.py
    python examples/breastmnist_benchmark.py [--with-resnet]
"""

from __future__ import annotations

import re
import tomllib

from spec_variants import HERE, run_variant

DOCS = HERE.parent / "docs" / "imaging.md"
VARIANTS = {
    "mixer, patch 4, width 128, depth 4": {"backbone": "mixer", "patch": 4, "width": 128, "depth": 4},
    "mixer, patch 2, width 64, depth 4": {"backbone": "mixer", "patch": 2, "width": 64, "depth": 4},
}
# convolutions on a CPU: stopped after 10 minutes of its first training on 2 cores; run it where a GPU is
RESNET = {"resnet, width 32, 3 stages": {"backbone": "resnet", "width": 32, "depth": 3}}


def main() -> None:
    import sys

    variants = {**VARIANTS, **(RESNET if "--with-resnet" in sys.argv else {})}
    raw = tomllib.loads((HERE / "breastmnist-cnn.toml").read_text(encoding="utf-8"))
    if not (HERE / raw["cohort"]["outcomes"]).exists():
        raise SystemExit("run examples/prepare_breastmnist.py first (it needs ../shared/data/breastmnist)")
    results = []
    for label, options in variants.items():
        raw["modality"][0]["options"].update(options)
        result, seconds = run_variant("breastmnist-cnn.toml", raw)
        val = result.metrics["sets"]["validation"]
        test = result.metrics["overall"]
        results.append((label, val["auroc"]["value"], test, seconds))
        print(label, f"val AUROC {val['auroc']['value']:.3f}", f"test AUROC {test['auroc']['value']:.3f}",
              f"ACC {test['accuracy']['value']:.3f}", f"{seconds:.0f} s", flush=True)
    chosen = max(results, key=lambda r: r[1])[0]
    lines = ["| backbone | validation AUROC | test AUROC (95% CI) | test accuracy | wall (2 trainings) |",
             "| --- | --- | --- | --- | --- |"]
    for label, val_auroc, test, seconds in results:
        mark = " **(selected on validation)**" if label == chosen else ""
        a, acc = test["auroc"], test["accuracy"]
        lines.append(f"| {label}{mark} | {val_auroc:.3f} | {a['value']:.3f} ({a['ci_low']:.3f}–{a['ci_high']:.3f}) | "
                     f"{acc['value']:.3f} | {seconds:.0f} s |")
    lines.append("| published: ResNet-18 (28), MedMNIST v2 | | 0.901 | 0.863 | |")
    text = DOCS.read_text(encoding="utf-8")
    text = re.sub(r"(<!-- breastmnist table -->\n).*?(<!-- end -->)", lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(2),
                  text, flags=re.S)
    DOCS.write_text(text, encoding="utf-8")
    print(f"table written to {DOCS}")


if __name__ == "__main__":
    main()
