"""Spec problems shared by the spec's sections: pydantic errors located in the TOML, and the message
for a component name that is not installed."""

from __future__ import annotations

import difflib

from pydantic import ValidationError

from .catalogue import CatalogueEntry, entry_for_component
from .errors import Problem
from .plugins import PluginRegistry, conflict_message, describe
from .tomlindex import TomlLineIndex, format_path


def problems_from(err: ValidationError, prefix: tuple, index: TomlLineIndex) -> list[Problem]:
    problems = []
    for item in err.errors():
        loc = prefix + tuple(item["loc"])
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if item["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling"
        elif item["type"] == "missing":
            message = "required; add it"
        has_value = item["type"] not in ("missing",) and not isinstance(item.get("input"), dict)
        problems.append(
            Problem(format_path(loc), message, index.line_of(loc), item.get("input"), has_value)
        )
    return problems


def unknown_component_message(
    name: str, family: str, registry: PluginRegistry, catalogue: list[CatalogueEntry], distribution: str | None = None
) -> str:
    installed = registry.names(family)
    conflict = conflict_message(name, registry)
    claimants = {info.owner_label for info, _ in registry.claims.get(name, [])}
    if distribution is not None and claimants:
        return (f"no {family} {name!r} from distribution {distribution!r}; it is registered by "
                f"{', '.join(map(repr, sorted(claimants)))}")
    if conflict:
        return conflict
    for info, why in [registry.unavailable.get(name, (None, ""))]:
        if info is not None:
            return f"{name!r} is installed ({describe(info)}) but cannot run here: it {why}"
    entry = entry_for_component(name, catalogue)
    for plugin in registry.plugins:
        if plugin.status == "unavailable" and entry is not None and entry.entry_point_name == plugin.name \
                and entry.distribution == plugin.distribution:
            return (f"{name!r} is installed ({describe(plugin)}) but cannot run here: the plugin {plugin.error}: "
                    f"{entry.install}")
    lines = ["no such component"]
    close = difflib.get_close_matches(name, installed, n=3, cutoff=0.6)
    if close:
        lines[0] += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    other_family = registry.find_family(name)
    if other_family:
        lines.append(f"{name!r} is a {other_family}, not a {family}")
    if entry and not other_family:
        lines.append(f"it is provided by {entry.distribution!r}, not installed: {entry.install}")
    for plugin in registry.broken:
        listed = entry is not None and entry.entry_point_name == plugin.name and entry.distribution == plugin.distribution
        if name in plugin.attempted or listed:
            lines.append(f"{describe(plugin)} tried to provide it but is broken: {plugin.error}")
    lines.append(f"installed {family} components: {', '.join(installed) or '(none)'}")
    return "\n".join(lines)


def build_component(cls, options: dict, base_dir, check_files: bool = True, registry=None, seed: int = 0):
    """``cls`` built from a spec's raw ``options`` (paths against ``base_dir``): the component, the
    ValidationError its Options raise, or None when only missing files failed and ``check_files`` is off
    (schema checks of examples)."""
    context = {"base_dir": base_dir, "registry": registry}
    if not check_files:
        context["skip_files"] = True
    try:
        return cls(cls.Options.model_validate(options, context=context), seed=seed)
    except ValidationError as err:
        if not check_files and all("file not found" in e["msg"] for e in err.errors()):
            return None
        return err


def options_message(err: ValidationError) -> str:
    """A component's Options errors on one line: ``options.NAME: what is wrong; ...``."""
    return "; ".join(f"options.{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                     if e["loc"] else e["msg"].removeprefix("Value error, ") for e in err.errors())
