"""Pages of the docs site generated at build time (mkdocs-gen-files runs this file).

Nothing here is copied by hand, so nothing drifts: the hook reference comes
from hookspecs.py's docstrings (mkdocstrings), the spec reference from the
pydantic models' JSON Schema and every installed component's Options, the
CLI reference from the typer program, the plugin directory from registry.toml.
"""

from __future__ import annotations

import json
from typing import Any

import mkdocs_gen_files
import typer

from tumorboard._engine.catalogue import load_catalogue, registry_path
from tumorboard._engine.cli import build_app
from tumorboard._engine.hookspecs import FEATURE_HOOKS, HOOKS
from tumorboard._engine.plugins import load_plugins
from tumorboard._engine.spec import RunSpec


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def schema_type(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " or ".join(schema_type(p) for p in prop["anyOf"])
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if prop.get("type") == "array":
        return f"list of {schema_type(prop.get('items', {}))}"
    return prop.get("type", "any")


def fields_table(schema: dict[str, Any]) -> list[str]:
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        default = "required" if name in required else f"`{json.dumps(prop.get('default'))}`"
        rows.append(f"| `{name}` | {cell(schema_type(prop))} | {cell(default)} | {cell(prop.get('description', ''))} |")
    return rows


def spec_reference() -> str:
    schema = RunSpec.model_json_schema()
    defs = schema.get("$defs", {})
    lines = ["# Run spec reference", "",
             "Generated from the pydantic models that validate a spec (`tumorboard spec schema` prints the same "
             "as JSON Schema, for editor completion). The narrative guide is [the run spec](../run-spec.md).", ""]
    for section, prop in schema["properties"].items():
        ref = prop.get("$ref") or next((p.get("$ref") for p in prop.get("anyOf", []) if "$ref" in p), None)
        ref = ref or prop.get("items", {}).get("$ref")
        if ref is None:
            continue
        model = defs[ref.rsplit("/", 1)[-1]]
        header = f"[[{section}]]" if prop.get("type") == "array" else f"[{section}]"
        lines += [f"## `{header}`", "", cell(model.get("description", "")), "", *fields_table(model), ""]
    registry = load_plugins()
    lines += ["## Component options", "",
              "Each component validates its own `options` table; unknown keys are errors. Installed here:", ""]
    for family in ("modality", "fusion", "model", "explainer"):
        for name in registry.names(family):
            cls = registry.get(family, name)
            options = cls.Options.model_json_schema()
            lines += [f"### `{name}`", "", cell((cls.__doc__ or "").strip().splitlines()[0]), ""]
            lines += fields_table(options) if options.get("properties") else ["No options."]
            lines.append("")
    return "\n".join(lines)


def cli_reference() -> str:
    command = typer.main.get_command(build_app())
    lines = ["# Command-line reference", "", "Generated from the `tumorboard` program, plugins' commands included.", ""]

    # typer vendors its own click: groups and parameters are recognised by what they have
    def params_table(cmd: Any) -> list[str]:
        rows = ["| argument or option | meaning | default |", "| --- | --- | --- |"]
        for param in cmd.params:
            if param.name == "help":
                continue
            names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts]) \
                if param.param_type_name == "option" else f"`{param.name.upper()}`"
            default = "" if param.default in (None, (), False) or callable(param.default) else f"`{param.default}`"
            rows.append(f"| {names} | {cell(getattr(param, 'help', '') or '')} | {cell(default)} |")
        return [*rows, ""] if len(rows) > 2 else []

    # typer vendors its own click: groups and parameters are recognised by what they have
    def walk(cmd: Any, path: list[str]) -> None:
        name = " ".join(["tumorboard", *path])
        if hasattr(cmd, "commands"):
            if path:
                lines.extend([f"## `{name}`", "", (cmd.help or "").strip(), "", *params_table(cmd)])
            for sub in sorted(cmd.commands):
                walk(cmd.commands[sub], [*path, sub])
            return
        arguments = " ".join(p.name.upper() for p in cmd.params if p.param_type_name == "argument")
        lines.extend([f"## `{name}`", "", f"`{name} [OPTIONS] {arguments}`".replace(" `", "`"), "",
                      (cmd.help or "").strip(), "", *params_table(cmd)])

    walk(command, [])
    return "\n".join(lines)


def plugin_directory() -> str:
    lines = ["# Plugin directory", "",
             "Rendered from [registry.toml](https://github.com/tumorboard/tumorboard/blob/main/registry.toml) at "
             "build time. How a plugin gets listed: [the registry](../registry.md).", "",
             "| plugin | kind | provides | install | summary |", "| --- | --- | --- | --- | --- |"]
    for entry in sorted(load_catalogue(registry_path()), key=lambda e: (e.distribution != "tumorboard", e.key)):
        provides = ", ".join(f"`{c}`" for c in entry.components or entry.commands)
        lines.append(f"| [{entry.key}]({entry.homepage}) | {entry.kind} | {provides} | `{cell(entry.install)}` | "
                     f"{cell(entry.summary)} |")
    return "\n".join(lines) + "\n"


def hook_reference() -> str:
    hooks = [*HOOKS, *FEATURE_HOOKS]
    members = "\n".join(f"        - {h}" for h in hooks)
    return ("# Hook reference\n\nGenerated from the hook specifications' docstrings. How to implement each, with "
            "examples: [plugin hooks](../plugin-hooks.md).\n\n::: tumorboard._engine.hookspecs\n    options:\n"
            "      show_root_heading: false\n      show_root_toc_entry: false\n      show_source: false\n"
            f"      members:\n{members}\n")


def api_reference() -> str:
    return ("# API reference\n\nWhat a plugin may import: `tumorboard.api` and `tumorboard.testing` (an import "
            "contract in CI keeps everything else private).\n\n## tumorboard.api\n\n::: tumorboard.api\n"
            "    options:\n      show_root_heading: false\n      show_source: false\n\n"
            "## tumorboard.testing\n\n::: tumorboard.testing\n    options:\n      show_root_heading: false\n"
            "      show_source: false\n")


for path, text in {
    "reference/spec.md": spec_reference(),
    "reference/cli.md": cli_reference(),
    "reference/hooks.md": hook_reference(),
    "reference/api.md": api_reference(),
    "plugins/directory.md": plugin_directory(),
}.items():
    with mkdocs_gen_files.open(path, "w") as fh:
        fh.write(text)
