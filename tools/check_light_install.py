"""Check a light install (`pip install tumorboard`, no extras) from inside it: CI runs this with the
python of a fresh virtual environment where only `pip install -e .` was done.

It asserts that none of the heavy libraries is installed, that `tumorboard plugins` lists the families it
cannot load with their install commands, and that a tabular spec with model.logistic runs end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

HEAVY = ["jax", "jaxlib", "flax", "optax", "simpleitk", "scikit-image", "shap", "matplotlib", "scikit-survival",
         "nibabel", "isal", "optuna", "ray"]


def main() -> int:
    installed = {d.metadata["Name"].lower() for d in metadata.distributions()}
    present = sorted(set(HEAVY) & installed)
    assert not present, f"a light install brought {present}"
    print(f"light install: {len(installed)} distributions, none of {', '.join(HEAVY)}")

    tumorboard = [sys.executable, "-m", "tumorboard"]
    listed = json.loads(subprocess.run([*tumorboard, "plugins", "--json"], capture_output=True, text=True,
                                       check=True).stdout)
    hints = {c: row["install"] for row in listed["unavailable"] for c in row["components"]}
    for component, extra in [("imaging.radiomics", "imaging"), ("omics.autoencoder", "omics"),
                             ("model.coxnet", "survival"), ("explain.shap", "explain"), ("report.cohort", "report"),
                             ("pathology.slides", "pathology")]:
        assert hints.get(component) == f'pip install "tumorboard[{extra}]"', (component, hints.get(component))
    print(f"unavailable here, with their install commands: {', '.join(sorted(hints))}")

    from tumorboard_synth.quickstart import write_quickstart

    with tempfile.TemporaryDirectory() as folder:
        spec = write_quickstart(Path(folder))
        subprocess.run([*tumorboard, "run", str(spec), "--quiet"], check=True)
        metrics = json.loads((Path(folder) / "runs" / "quickstart" / "metrics.json").read_text(encoding="utf-8"))
        auroc = metrics["overall"]["auroc"]
        assert auroc["value"] > 0.7, auroc
        print(f"tabular spec with model.logistic: AUROC {auroc['value']:.3f} "
              f"({auroc['ci_low']:.3f}-{auroc['ci_high']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
