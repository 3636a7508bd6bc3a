"""Screenshots of a cohort report and a patient card for docs/explanations.md (headless Chromium).

    python examples/report_screenshots.py          # needs Debian's chromium

Generates a 300-patient synthetic cohort, runs the demo's spec with the
baseline CT added through imaging.cnn and explain.saliency beside
explain.shap, writes one patient's card (a patient with a scan), and saves
both pages as PNG in docs/images/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import tomli_w

HERE = Path(__file__).resolve().parent
IMAGES = HERE.parent / "docs" / "images"
CT = {"name": "ct", "plugin": "imaging.cnn",
      "options": {"manifest": "imaging/manifest.csv", "folder": ".", "time_point": "baseline",
                  "window": [-150.0, 250.0], "field": "fixed", "spacing": [1.0, 1.0, 2.0], "shape": [16, 32, 32],
                  "epochs": 30, "patience": 8}}


def screenshot(chromium: str, page: Path, png: Path, height: int) -> None:
    subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size=1100,{height}", f"--screenshot={png}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    print(f"wrote {png}")


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium is not installed (Debian: apt-get install chromium)")
    from tumorboard_report.card import patient_card
    from tumorboard._engine.engine import run
    from tumorboard_synth import SynthOptions, generate

    with tempfile.TemporaryDirectory() as tmp:
        cohort = generate(Path(tmp) / "cohort", SynthOptions(patients=300, seed=0))
        raw = tomllib.loads((HERE / "synthetic-response.toml").read_text(encoding="utf-8"))
        raw["modality"].append(CT)
        raw["explainer"] = [{"plugin": "explain.shap"}, {"plugin": "explain.saliency", "options": {"max_patients": 300}}]
        raw["run"]["output"] = str(Path(tmp) / "run")
        spec = cohort / "spec.toml"
        spec.write_text(tomli_w.dumps(raw), encoding="utf-8")
        result = run(spec)
        import numpy as np

        with np.load(result.path / "attributions" / "explain.saliency-images.npz") as maps:
            inside = {k.split("/")[1]: float(maps[k]) for k in maps.files if k.endswith("/inside")}
        ranked = sorted(inside, key=inside.get)
        patient = ranked[len(ranked) // 2]  # a typical map, not the clearest: the median inside share
        card = patient_card(result.path, patient)
        IMAGES.mkdir(parents=True, exist_ok=True)
        screenshot(chromium, result.path / "report.html", IMAGES / "cohort-report.png", 3900)
        screenshot(chromium, card, IMAGES / "patient-card.png", 3300)


if __name__ == "__main__":
    main()
