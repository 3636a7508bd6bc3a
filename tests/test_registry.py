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
        assert entry.kinds and set(entry.kinds) <= {"modality", "model", "fusion", "explainer", "command"}
        assert entry.components or entry.commands


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
