"""Discovery through entry points: built-ins, broken plugins, duplicates, local modules."""

from __future__ import annotations

import importlib
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tumorboard._engine.cli import build_app

app = build_app()
from tumorboard._engine.plugins import load_plugins

BUILTINS = {"tabular.file", "model.logistic", "fusion.concat", "explain.permutation"}

GOOD_MODEL = '''
import numpy as np
from pydantic import BaseModel, ConfigDict
from tumorboard.api import Model, hookimpl

class {cls}(Model):
    """A constant model used to test discovery."""
    name = "{name}"
    tasks = frozenset({{"binary"}})
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
    def fit(self, X, y):
        self.rate_ = np.array([y.values.mean()])
        return self
    def predict(self, X):
        return np.full(len(X.ids), self.rate_[0])

@hookimpl
def register_models(register):
    register({cls})
'''


def fake_distribution(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """Write modules plus a dist-info folder, as pip would, under ``root``."""
    for name, code in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(code))
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[tumorboard]\n{lines}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


def test_builtins_are_found_through_entry_points():
    registry = load_plugins()
    found = {name for family in registry.components.values() for name in family}
    assert BUILTINS <= found
    for name in BUILTINS:
        owner = registry.owner[name]
        assert owner.source == "entry point" and owner.distribution == "tumorboard"


def test_plugins_json_lists_the_builtins():
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    installed = {c: p["distribution"] for p in data["installed"] for c in p["components"]}
    assert BUILTINS <= set(installed)
    assert all(p["source"] == "entry point" for p in data["installed"] if set(p["components"]) & BUILTINS)
    assert "model.centroid" in {c for e in data["not_installed"] for c in e["components"]}


def test_plugin_that_fails_to_import_is_reported_and_others_work(site):
    fake_distribution(site, "tb-broken", {"tb_broken": "import no_such_module_xyz\n"}, {"broken": "tb_broken"})
    fake_distribution(site, "tb-good", {"tb_good": GOOD_MODEL.format(cls="Const", name="model.constant")}, {"good": "tb_good"})
    registry = load_plugins()
    broken = {p.name: p for p in registry.broken}
    assert "broken" in broken
    assert broken["broken"].distribution == "tb-broken"
    assert "No module named 'no_such_module_xyz'" in broken["broken"].error
    assert registry.get("model", "model.constant") is not None
    assert BUILTINS <= {n for f in registry.components.values() for n in f}


def test_component_name_claimed_by_two_distributions_is_a_conflict_not_a_choice(site):
    fake_distribution(site, "tb-dupe", {"tb_dupe": GOOD_MODEL.format(cls="Dupe", name="model.logistic")}, {"dupe": "tb_dupe"})
    registry = load_plugins()
    assert registry.get("model", "model.logistic") is None  # never picked by load order
    claimants = {p.distribution for p in registry.conflicts["model.logistic"]}
    assert claimants == {"tumorboard", "tb-dupe"}
    assert registry.get("model", "model.logistic", "tb-dupe").__name__ == "Dupe"
    assert registry.get("model", "model.logistic", "tumorboard").__name__ == "LogisticModel"
    assert "claimed by two distributions (model.logistic)" in registry.summary_line()
    listed = json.loads(CliRunner().invoke(app, ["plugins", "--json"]).output)["conflicts"]["model.logistic"]
    assert {entry["distribution"] for entry in listed} == {"tumorboard", "tb-dupe"}


def test_spec_naming_a_conflicting_component_names_both_and_how_to_pin(site, quickstart):
    fake_distribution(site, "tb-dupe", {"tb_dupe": GOOD_MODEL.format(cls="Dupe", name="model.logistic")}, {"dupe": "tb_dupe"})
    result = CliRunner().invoke(app, ["spec", "validate", str(quickstart)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "'tumorboard'" in text and "'tb-dupe'" in text
    assert 'distribution = "tumorboard"' in text and 'distribution = "tb-dupe"' in text
    pinned = quickstart.read_text(encoding="utf-8").replace(
        'plugin = "model.logistic"', 'plugin = "model.logistic"\ndistribution = "tb-dupe"')
    quickstart.write_text(pinned, encoding="utf-8")
    from tumorboard._engine.engine import run

    result = run(quickstart)
    assert result.metrics["overall"]["auroc"]["value"] == 0.5  # the pinned constant model, not the built-in
    manifest = json.loads((result.path / "pipeline" / "manifest.json").read_text())
    assert [c["distribution"] for c in manifest["components"] if c["role"] == "model"] == ["tb-dupe"]


def test_two_distributions_reusing_an_entry_point_name_both_load(site):
    fake_distribution(site, "tb-one", {"tb_one": GOOD_MODEL.format(cls="One", name="model.one")}, {"lab": "tb_one"})
    fake_distribution(site, "tb-two", {"tb_two": GOOD_MODEL.format(cls="Two", name="model.two")}, {"lab": "tb_two"})
    registry = load_plugins()
    assert registry.get("model", "model.one") is not None and registry.get("model", "model.two") is not None
    assert {p.distribution for p in registry.plugins if p.name == "lab" and p.status == "ok"} == {"tb-one", "tb-two"}


def test_unknown_hook_name_is_reported_as_broken(site):
    typo = GOOD_MODEL.format(cls="Typo", name="model.typo").replace("def register_models(", "def register_model(")
    fake_distribution(site, "tb-typo", {"tb_typo": typo}, {"typo": "tb_typo"})
    registry = load_plugins()
    (entry,) = [p for p in registry.plugins if p.name == "typo"]
    assert entry.status == "broken"
    assert "unknown hook 'register_model'" in entry.error and "did you mean 'register_models'" in entry.error


def test_plugin_that_registers_nothing_is_reported_as_empty(site):
    fake_distribution(site, "tb-empty", {"tb_empty": "x = 1\n"}, {"nothing": "tb_empty"})
    registry = load_plugins()
    (entry,) = [p for p in registry.plugins if p.name == "nothing"]
    assert entry.status == "empty" and "implements none of tumorboard's hooks" in entry.error
    assert "1 plugin registering nothing (nothing)" in registry.summary_line()


def test_no_such_component_names_the_broken_plugin_that_tried_in_one_sentence(site, quickstart):
    bad = GOOD_MODEL.format(cls="Half", name="model.half").replace('"""A constant model used to test discovery."""', "")
    fake_distribution(site, "tb-half", {"tb_half": bad}, {"half": "tb_half"})
    quickstart.write_text(quickstart.read_text(encoding="utf-8").replace('"model.logistic"', '"model.half"'))
    result = CliRunner().invoke(app, ["spec", "validate", str(quickstart)])
    text = " ".join(result.output.split())
    assert "plugin 'half' (distribution 'tb-half') tried to provide it but is broken: Half has no docstring" in text
    assert "pluggy" not in text.lower()


def test_spec_validate_prints_the_broken_plugin_count(site, quickstart):
    fake_distribution(site, "tb-broken", {"tb_broken3": "import no_such_module_xyz\n"}, {"broken3": "tb_broken3"})
    result = CliRunner().invoke(app, ["spec", "validate", str(quickstart)])
    assert result.exit_code == 0, result.output
    assert "1 broken plugin (broken3); see `tumorboard plugins`" in " ".join(result.output.split())


def test_component_failing_the_api_checks_breaks_only_its_plugin(site):
    bad = GOOD_MODEL.format(cls="Bad", name="Logistic").replace('model_config = ConfigDict(extra="forbid")', "pass")
    fake_distribution(site, "tb-bad", {"tb_bad": bad}, {"bad": "tb_bad"})
    registry = load_plugins()
    (broken,) = [p for p in registry.broken if p.name == "bad"]
    assert "is not of the form 'family.variant'" in broken.error
    assert "must reject unknown keys" in broken.error


def test_options_derived_from_the_api_base_reject_unknown_keys(site):
    """A third party writes ``class Options(Options)`` with tumorboard.api's base: it passes the API
    check, and a misspelt key in a spec is an error, not a silently ignored option."""
    from pydantic import ValidationError

    code = GOOD_MODEL.format(cls="Based", name="model.based").replace(
        "from pydantic import BaseModel, ConfigDict\nfrom tumorboard.api import Model, hookimpl",
        "from tumorboard.api import Model, Options, hookimpl").replace(
        "class Options(BaseModel):\n        model_config = ConfigDict(extra=\"forbid\")",
        "class Options(Options):\n        shrink: float = 0.5")
    assert "class Options(Options)" in code
    fake_distribution(site, "tb-based", {"tb_based": code}, {"based": "tb_based"})
    registry = load_plugins()
    cls = registry.get("model", "model.based")
    assert cls is not None and not [p for p in registry.broken if p.name == "based"]
    assert cls.Options.model_validate({"shrink": 0.2}).shrink == 0.2
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        cls.Options.model_validate({"shrnik": 0.2})


def test_broken_plugins_show_in_the_plugins_command(site):
    fake_distribution(site, "tb-broken", {"tb_broken2": "raise RuntimeError('boom at import')\n"}, {"broken2": "tb_broken2"})
    result = CliRunner().invoke(app, ["plugins", "--json"])
    data = json.loads(result.output)
    (entry,) = [p for p in data["broken"] if p["name"] == "broken2"]
    assert entry["distribution"] == "tb-broken" and "boom at import" in entry["error"]


def test_disable_env_skips_named_plugins(monkeypatch):
    monkeypatch.setenv("TUMORBOARD_DISABLE_PLUGINS", "explain, linear")
    registry = load_plugins()
    assert registry.get("explainer", "explain.permutation") is None
    assert registry.get("model", "model.logistic") is None
    assert registry.get("modality", "tabular.file") is not None
    assert {p.name for p in registry.plugins if p.status == "disabled"} == {"explain", "linear"}


def test_local_module_loads_by_file_path_from_the_spec_folder(quickstart):
    (quickstart.parent / "my_lab_plugin.py").write_text(GOOD_MODEL.format(cls="Lab", name="model.lab_constant"))
    text = quickstart.read_text(encoding="utf-8").replace('plugin = "model.logistic"', 'plugin = "model.lab_constant"')
    quickstart.write_text(text + '\n[plugins]\nmodules = ["my_lab_plugin"]\n')
    from tumorboard._engine.engine import run

    result = run(quickstart)
    assert result.metrics["overall"]["auroc"]["value"] == 0.5  # a constant predictor, as written
    import sys

    assert str(quickstart.parent) not in sys.path and "my_lab_plugin" not in sys.modules


def test_spec_plugin_module_without_a_file_beside_the_spec_is_an_error(quickstart):
    quickstart.write_text(quickstart.read_text(encoding="utf-8") + '\n[plugins]\nmodules = ["json"]\n')
    result = CliRunner().invoke(app, ["spec", "validate", str(quickstart)])
    assert result.exit_code == 2
    assert "plugins.modules[0]" in result.output and "no plugin file json.py" in " ".join(result.output.split())


def test_local_module_loads_from_the_command_line_by_path(tmp_path):
    (tmp_path / "cli_lab_plugin.py").write_text(GOOD_MODEL.format(cls="Cli", name="model.cli_constant"))
    result = CliRunner().invoke(app, ["plugins", "--json", "-p", str(tmp_path / "cli_lab_plugin.py")])
    data = json.loads(result.output)
    (entry,) = [p for p in data["installed"] if p["name"] == "cli_lab_plugin"]
    assert entry["source"] == "file" and entry["components"] == ["model.cli_constant"]


def test_local_module_loads_from_the_command_line_by_module_name(site):
    (site / "cli_named_plugin.py").write_text(GOOD_MODEL.format(cls="Named", name="model.cli_named"))
    result = CliRunner().invoke(app, ["plugins", "--json", "-p", "cli_named_plugin"])
    data = json.loads(result.output)
    (entry,) = [p for p in data["installed"] if p["name"] == "cli_named_plugin"]
    assert entry["source"] == "module" and entry["components"] == ["model.cli_named"]
