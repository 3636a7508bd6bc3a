"""registry.toml, pyproject's entry points, hook docs and the spec schema stay in step."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from tumorboard._engine import hookspecs
from tumorboard._engine.catalogue import load_catalogue
from tumorboard._engine.plugins import load_plugins
from tumorboard._engine.spec import load_spec, spec_json_schema

from conftest import REPO


def builtin_entry_points() -> dict[str, str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["project"]["entry-points"]["tumorboard"]


def test_every_builtin_entry_point_is_in_the_registry_and_back():
    declared = {f"{k} = {v}" for k, v in builtin_entry_points().items()}
    catalogued = {e.entry_point for e in load_catalogue(REPO / "registry.toml") if e.distribution == "tumorboard"}
    assert declared - catalogued == set(), "add these entry points to registry.toml"
    assert catalogued - declared == set(), "registry.toml lists built-ins that pyproject.toml does not declare"


def test_registry_tables_have_every_field():
    for entry in load_catalogue(REPO / "registry.toml"):
        for field in ("kind", "distribution", "entry_point", "summary", "api_version", "homepage", "install"):
            assert getattr(entry, field), f"registry.toml [{entry.key}] lacks {field}"
        assert entry.kinds and set(entry.kinds) <= {"modality", "model", "fusion", "explainer", "reporter", "analysis", "command"}
        assert entry.components or entry.commands or entry.sections


def test_registry_components_match_what_builtins_register():
    registry = load_plugins()
    for entry in load_catalogue(REPO / "registry.toml"):
        if entry.distribution != "tumorboard":
            continue
        (info,) = [p for p in registry.plugins if p.name == entry.entry_point_name]
        assert sorted(info.components) == sorted(entry.components)


def test_registry_commands_match_what_builtins_add():
    from tumorboard._engine.cli import build_app

    names = {c.name or c.callback.__name__ for c in build_app().registered_commands}
    for entry in load_catalogue(REPO / "registry.toml"):
        if entry.distribution == "tumorboard" and entry.commands:
            assert set(entry.commands) <= names, entry.key


def test_every_hook_has_a_section_in_the_plugin_docs():
    docs = (REPO / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
    for hook in [*hookspecs.HOOKS, *hookspecs.FEATURE_HOOKS]:
        assert re.search(rf"^## `{hook}`", docs, re.MULTILINE), f"docs/plugin-hooks.md lacks a section for {hook}"
        assert (getattr(hookspecs, hook).__doc__ or "").strip(), f"{hook} has no docstring"


def test_schema_validates_every_example_spec():
    schema = spec_json_schema(load_plugins())
    jsonschema.Draft202012Validator.check_schema(schema)
    examples = sorted((REPO / "examples").glob("*.toml"))
    assert examples
    for path in examples:
        jsonschema.validate(tomllib.loads(path.read_text(encoding="utf-8")), schema)
        load_spec(path, check_files=False)  # and the spec loader agrees


def test_schema_rejects_an_option_the_plugin_does_not_have():
    schema = spec_json_schema(load_plugins())
    spec = tomllib.loads((REPO / "examples" / "quickstart.toml").read_text(encoding="utf-8"))
    spec["modality"][0]["options"]["bin_width"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)


def test_schema_command_prints_json_schema():
    result = subprocess.run([sys.executable, "-m", "tumorboard", "spec", "schema"], capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert "model.logistic" in result.stdout and schema["title"] == "tumorboard run spec"


def test_core_never_imports_a_plugin():
    """The import-linter contracts in pyproject.toml (CI runs lint-imports too)."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], capture_output=True, text=True, encoding="utf-8", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


PUBLIC_MODULES = {"api", "testing"}


def test_tumorboard_exposes_only_api_and_testing_to_plugins():
    """The private_modules contract is an allow-list only while nothing else sits beside the private package."""
    package = REPO / "core" / "tumorboard"
    modules = {p.stem for p in package.glob("*.py")} | {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert modules - {"__init__", "__main__", "_engine"} == PUBLIC_MODULES


@pytest.mark.parametrize("target, broken", [
    ("from tumorboard._engine.spec import load_spec", True),
    ("import tumorboard._engine.engine", True),
    ("from tumorboard.api import Model, hookimpl", False),
    ("from tumorboard.testing import check_component", False),
])
def test_a_plugin_importing_an_internal_module_breaks_the_contract(tmp_path, target, broken):
    """The repository's own contracts, run over a plugin package that reaches into the engine (or does not)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    plugin = tmp_path / "tumorboard_evil"
    plugin.mkdir()
    (plugin / "__init__.py").write_text(f"{target}\n", encoding="utf-8")
    lines = ["[tool.importlinter]", f"root_packages = {json.dumps(config['root_packages'] + ['tumorboard_evil'])}"]
    for contract in config["contracts"]:
        lines.append("[[tool.importlinter.contracts]]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in contract.items())
    (tmp_path / "contracts.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), str(tmp_path / "contracts.toml"), "--no-cache"],
                            capture_output=True, text=True, encoding="utf-8", cwd=tmp_path, env=env)
    output = result.stdout + result.stderr
    if broken:
        assert result.returncode != 0 and "plugins enter through tumorboard.api and tumorboard.testing only BROKEN" in output, output
        assert "tumorboard_evil" in output
    else:
        assert result.returncode == 0, output


def test_registry_check_passes_every_builtin_table_and_names_what_is_wrong(tmp_path):
    from typer.testing import CliRunner

    from tumorboard._engine.catalogue import check_entry
    from tumorboard._engine.cli import build_app

    for entry in load_catalogue(REPO / "registry.toml"):
        if entry.distribution == "tumorboard":
            assert check_entry(entry) == [], entry.key
    bad = tmp_path / "registry.toml"
    bad.write_text(
        '[plugins.wrong_components]\nkind = "model"\ndistribution = "tumorboard"\nentry_point = "linear = tumorboard_linear"\n'
        'components = ["model.logistic", "model.svm"]\nsummary = "s"\napi_version = "1"\nhomepage = "h"\ninstall = "i"\n'
        '[plugins.wrong_kind]\nkind = "modality"\ndistribution = "tumorboard"\nentry_point = "linear = tumorboard_linear"\n'
        'components = ["model.logistic"]\nsummary = "s"\napi_version = "1"\nhomepage = "h"\ninstall = "i"\n'
        '[plugins.wrong_entry_point]\nkind = "model"\ndistribution = "tumorboard"\nentry_point = "linear = tumorboard_lin"\n'
        'components = ["model.logistic"]\nsummary = "s"\napi_version = "1"\nhomepage = "h"\ninstall = "i"\n'
        '[plugins.absent]\nkind = "model"\ndistribution = "tumorboard-not-here"\nentry_point = "x = y"\n'
        'components = ["model.x"]\nsummary = "s"\napi_version = "1"\nhomepage = "h"\ninstall = "pip install tumorboard-not-here"\n',
        encoding="utf-8")
    runner = CliRunner()
    expected = {"wrong_components": "model.svm", "wrong_kind": "the plugin provides model",
                "wrong_entry_point": "declares no tumorboard entry point", "absent": "is not installed here"}
    for key, message in expected.items():
        result = runner.invoke(build_app(), ["registry", "check", key, "--file", str(bad)], env={"COLUMNS": "300"})
        assert result.exit_code == 1 and message in result.output, (key, result.output)
    result = runner.invoke(build_app(), ["registry", "check", "linear"])
    assert result.exit_code == 0 and "matches tumorboard" in result.output


def test_a_user_registry_adds_to_the_bundled_one(tmp_path, monkeypatch):
    user = tmp_path / "mine.toml"
    user.write_text('[plugins.lab_model]\nkind = "model"\ndistribution = "lab-model"\nentry_point = "lab = lab_model"\n'
                    'components = ["model.lab"]\nsummary = "Our lab\'s model."\napi_version = "1"\nhomepage = "h"\n'
                    'install = "pip install lab-model"\n', encoding="utf-8")
    monkeypatch.setenv("TUMORBOARD_USER_REGISTRY", str(user))
    keys = {e.key for e in load_catalogue()}
    assert "lab_model" in keys and {"linear", "imaging"} <= keys
    broken = tmp_path / "broken.toml"
    broken.write_text("[plugins.x\n", encoding="utf-8")
    monkeypatch.setenv("TUMORBOARD_USER_REGISTRY", str(broken))
    with pytest.raises(Exception, match="broken.toml: not a readable registry file"):
        load_catalogue()


def test_the_kernel_has_no_module_level_import_cycles():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "import_cycles.py"), str(REPO / "core")],
                            capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0 and "0 module-level import cycles" in result.stdout, result.stdout
