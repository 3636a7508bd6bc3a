"""A small tabular cohort with a planted answer, and the quickstart spec that runs on it.

Used by ``tumorboard demo`` (until the full synthetic multimodal cohort lands) and
by the tests. The response depends on three of the six lab columns through a
logistic model, so a working pipeline must find them and a leaking one is caught
by permuting the labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

LABS = ("hemoglobin", "creatinine", "ldh", "albumin", "ca125", "platelets")
# log-odds per SD of each lab; the last three carry no signal
EFFECTS = {"hemoglobin": 1.2, "ldh": -1.0, "albumin": 0.7}

QUICKSTART_SPEC = """\
[run]
name = "quickstart"
task = "binary"            # binary | multiclass | regression | survival
seed = 7
output = "runs/quickstart"

[cohort]
outcomes = "cohort.csv"
id = "patient_id"
target = "response"        # for survival: target = ["os_months", "os_event"]
subgroups = ["sex"]

[[modality]]
name = "labs"
plugin = "tabular.file"
options = { path = "labs.csv" }

[fusion]
plugin = "fusion.concat"

[model]
plugin = "model.logistic"

[evaluation]
folds = 5
repeats = 1
metrics = ["auroc", "accuracy", "brier"]

[[explainer]]
plugin = "explain.permutation"
"""


def write_quickstart(folder: Path, patients: int = 400, seed: int = 0, shuffle_labels: bool = False) -> Path:
    """Write cohort.csv, labs.csv and spec.toml into ``folder``; return the spec's path.

    ``shuffle_labels`` permutes the response across patients (the leakage check:
    cross-validated AUROC must then stay at chance).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"QS{i:05d}" for i in range(patients)]
    z = rng.standard_normal((patients, len(LABS)))
    logit = -0.2 + sum(EFFECTS[name] * z[:, LABS.index(name)] for name in EFFECTS)
    response = (rng.random(patients) < 1 / (1 + np.exp(-logit))).astype(int)
    if shuffle_labels:
        response = rng.permutation(response)
    # realistic units: mean and SD per lab
    scale = {"hemoglobin": (12.5, 1.6), "creatinine": (0.9, 0.25), "ldh": (220, 60),
             "albumin": (3.9, 0.5), "ca125": (35, 20), "platelets": (250, 60)}
    labs = {"patient_id": ids}
    for j, name in enumerate(LABS):
        mu, sd = scale[name]
        values = mu + sd * z[:, j]
        values[rng.random(patients) < 0.08] = np.nan  # 8% missing at random
        labs[name] = np.round(values, 3)
    pl.DataFrame({
        "patient_id": ids,
        "response": response,
        "sex": rng.choice(["female", "male"], patients),
    }).write_csv(folder / "cohort.csv")
    pl.DataFrame(labs).fill_nan(None).write_csv(folder / "labs.csv")  # gaps as empty cells
    spec = folder / "spec.toml"
    spec.write_text(QUICKSTART_SPEC, encoding="utf-8")
    return spec
