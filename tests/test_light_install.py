"""A light install lists what it cannot load with the install command, and still runs a tabular spec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tumorboard.api import Model, hookimpl
from tumorboard._engine.plugins import PluginInfo, _Loader, unavailable_here
from tumorboard_synth.quickstart import write_quickstart

LIGHT = Path(__file__).with_name("light_install.py")


def light(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(LIGHT), *args], capture_output=True, text=True, encoding="utf-8",
                          cwd=cwd, timeout=300)


def test_plugins_lists_families_it_cannot_load_with_their_install_command():
    result = light("plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    hints = {c: row["install"] for row in data["unavailable"] for c in row["components"]}
    assert hints["imaging.radiomics"] == 'pip install "tumorboard[imaging]"'
    assert hints["omics.autoencoder"] == 'pip install "tumorboard[omics]"'
    assert hints["fusion.attention"] == 'pip install "tumorboard[neural]"'
    assert hints["model.coxnet"] == 'pip install "tumorboard[survival]"'
    assert hints["explain.shap"] == 'pip install "tumorboard[explain]"'
    assert hints["pathology.slides"] == 'pip install "tumorboard[pathology]"'
    # what needs only the core stays usable
    assert {"model.logistic", "model.gbm"} <= set(data["components"]["model"])
    assert {"tabular.file", "ehr.polars", "omics.pca"} <= set(data["components"]["modality"])
    assert "model.coxnet" not in data["components"]["model"]
    # unavailable is not broken: nothing is wrong with the plugin itself
    assert not data["broken"]


def test_a_tabular_logistic_spec_runs_and_a_spec_naming_an_unavailable_model_gets_the_hint(tmp_path):
    spec = write_quickstart(tmp_path, patients=200)
    result = light("run", str(spec), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "runs" / "quickstart" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["auroc"]["value"] > 0.7

    spec.write_text(spec.read_text(encoding="utf-8").replace('"model.logistic"', '"model.coxnet"'), encoding="utf-8")
    result = light("spec", "validate", str(spec), cwd=tmp_path)
    assert result.returncode == 2
    assert "model.coxnet" in result.stderr and 'pip install "tumorboard[survival]"' in result.stderr


def test_a_component_whose_requirement_is_missing_is_unavailable_and_its_siblings_load():
    class Needy(Model):
        """Needs a package nobody has."""

        name = "model.needy"
        tasks = frozenset({"binary"})
        requires = ("tumorboard_no_such_module_xyz",)
        install = "pip install needy-extra"

        def fit(self, X, y):
            return self

        def predict(self, X):
            return None

    class Plain(Needy):
        """Needs nothing."""

        name = "model.plain"
        requires = ()

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(Needy)
            register(Plain)

    loader = _Loader()
    info = PluginInfo("needy", "needy", "module")
    loader._add(info)
    loader._register(info, Plugin())  # type: ignore[arg-type]
    assert loader.registry.names("model") == ["model.plain"]
    assert info.status == "ok"
    rows = unavailable_here(loader.registry, [])
    assert rows == [{"plugin": "needy", "distribution": None, "components": ["model.needy"],
                     "reason": "needs tumorboard_no_such_module_xyz (not installed)", "install": "pip install needy-extra"}]

