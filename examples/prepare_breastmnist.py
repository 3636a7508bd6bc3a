"""Write BreastMNIST (../shared/data/breastmnist) as .mha images with a manifest, for imaging.cnn.

    python examples/prepare_breastmnist.py     # into examples/data/breastmnist/ (git-ignored)

Writes images/<id>.mha (28 x 28, uint8), manifest.csv (patient_id, image) and
outcomes.csv (patient_id, malignant, split: train/validation/test — the
official split). The label is turned round so that 1 = malignant, the class
of interest (the file's 0 = malignant, 1 = normal or benign).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "shared" / "data" / "breastmnist" / "breastmnist.npz"


def main(out: Path) -> None:
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is absent: nothing to prepare")
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows, outcomes = [], []
    with np.load(SOURCE, allow_pickle=False) as data:
        for split, word in (("train", "train"), ("val", "validation"), ("test", "test")):
            images, labels = data[f"{split}_images"], np.asarray(data[f"{split}_labels"]).reshape(-1)
            for k, (image, label) in enumerate(zip(images, labels, strict=True)):
                pid = f"BMN-{split}-{k:04d}"
                sitk.WriteImage(sitk.GetImageFromArray(image), str(out / "images" / f"{pid}.mha"))
                rows.append({"patient_id": pid, "image": f"images/{pid}.mha"})
                outcomes.append({"patient_id": pid, "malignant": int(label == 0), "split": word})
    pl.DataFrame(rows).write_csv(out / "manifest.csv")
    pl.DataFrame(outcomes).write_csv(out / "outcomes.csv")
    print(f"breastmnist: {len(rows)} images -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "data" / "breastmnist")
