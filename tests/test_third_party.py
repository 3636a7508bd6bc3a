"""A real third-party package, pip-installed, discovered and used without touching the core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tumorboard_synth.quickstart import write_quickstart

from conftest import fast

PACKAGE = Path(__file__).parent / "third_party" / "tumorboard-example-centroid"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """pip-install the example plugin into its own folder; return an env that sees it."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(PACKAGE)],
        check=True, capture_output=True, text=True, encoding="utf-8",
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")])
    return env


def tumorboard(env, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tumorboard", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, encoding="utf-8")


def test_installed_plugin_is_discovered_with_its_distribution(installed):
    result = tumorboard(installed, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (entry,) = [p for p in data["installed"] if p["name"] == "centroid"]
    assert entry["distribution"] == "tumorboard-example-centroid" and entry["version"] == "0.2.0"
    assert entry["components"] == ["model.centroid"] and entry["source"] == "entry point"
    assert "centroid" not in {e["name"] for e in data["not_installed"]}


def test_installed_plugin_passes_the_testing_kit_from_its_own_suite(installed):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PACKAGE / "tests")],
        env=installed, capture_output=True, text=True, encoding="utf-8", cwd=PACKAGE,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    from tumorboard.testing import CHECKS, checks_for
    from tumorboard.testing import _ReferenceModel

    # every check that applies to a model, and none of the modality, fusion or explainer ones, once for each
    # task the plugin declares (model.centroid: binary and multiclass)
    applicable = len(checks_for(_ReferenceModel()))
    assert applicable == len(CHECKS) - 3
    assert f"{2 * applicable} passed" in result.stdout


def test_spec_uses_the_installed_plugin(installed, tmp_path):
    spec = fast(write_quickstart(tmp_path, patients=150, seed=2))
    spec.write_text(spec.read_text(encoding="utf-8").replace('"model.logistic"', '"model.centroid"'))
    result = tumorboard(installed, "run", str(spec), "--quiet")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "runs/quickstart/metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["auroc"]["value"] > 0.7
    provenance = json.loads((tmp_path / "runs/quickstart/provenance.json").read_text(encoding="utf-8"))
    assert provenance["plugins"]["centroid"]["distribution"] == "tumorboard-example-centroid"
