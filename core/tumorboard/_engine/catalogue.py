"""registry.toml: the catalogue of known plugins, installed or not.

It lets ``tumorboard plugins`` list what could be installed, and lets an
unknown ``plugin = "..."`` in a spec answer with the install command.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import TumorboardError
from .hookspecs import PLUGIN_API_VERSION

REGISTRY_ENV = "TUMORBOARD_REGISTRY"
USER_REGISTRY_ENV = "TUMORBOARD_USER_REGISTRY"
"""A registry file of the user's (a lab's own plugins) that adds to the bundled catalogue; default
``$XDG_CONFIG_HOME/tumorboard/registry.toml`` (``~/.config/tumorboard/registry.toml``)."""


@dataclass(frozen=True)
class CatalogueEntry:
    """One known plugin: what it is and how to get it."""

    key: str
    kind: str
    distribution: str
    entry_point: str
    summary: str
    api_version: str
    homepage: str
    components: tuple[str, ...]
    install: str
    commands: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        """A plugin may provide several kinds: ``kind = ["model", "explainer"]`` in registry.toml."""
        return tuple(k.strip() for k in self.kind.split(",") if k.strip())

    @property
    def entry_point_name(self) -> str:
        return self.entry_point.split("=")[0].strip()

    @property
    def entry_point_module(self) -> str:
        return self.entry_point.split("=", 1)[-1].strip()


def registry_path() -> Path | None:
    """Where registry.toml is: $TUMORBOARD_REGISTRY, the source tree, or the packaged copy."""
    if os.environ.get(REGISTRY_ENV):
        return Path(os.environ[REGISTRY_ENV])
    here = Path(__file__).resolve().parents[1]  # the tumorboard package (this file is in _engine/)
    for candidate in (here.parents[1] / "registry.toml", here / "registry.toml"):
        if candidate.is_file():
            return candidate
    return None


def user_registry_path() -> Path:
    if os.environ.get(USER_REGISTRY_ENV):
        return Path(os.environ[USER_REGISTRY_ENV])
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "tumorboard" / "registry.toml"


def load_catalogue(path: Path | None = None) -> list[CatalogueEntry]:
    """The bundled catalogue (or ``path``), plus the user's registry file when there is one: its tables add
    plugins, and one with a bundled table's key replaces that table (a lab's own fork of a plugin)."""
    if path is not None:
        return _read_catalogue(path)
    entries = {e.key: e for e in _read_catalogue(registry_path())}
    entries.update({e.key: e for e in _read_catalogue(user_registry_path())})
    return list(entries.values())


def _read_catalogue(path: Path | None) -> list[CatalogueEntry]:
    if path is None or not path.is_file():
        return []
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise TumorboardError(f"{path}: not a readable registry file ({err}); fix or remove it") from err
    entries = []
    for key, table in raw.get("plugins", {}).items():
        entries.append(
            CatalogueEntry(
                key=key,
                kind=", ".join(table["kind"]) if isinstance(table.get("kind"), list) else table.get("kind", ""),
                distribution=table.get("distribution", ""),
                entry_point=table.get("entry_point", ""),
                summary=table.get("summary", ""),
                api_version=str(table.get("api_version", "")),
                homepage=table.get("homepage", ""),
                components=tuple(table.get("components", ())),
                install=table.get("install", f"pip install {table.get('distribution', key)}"),
                commands=tuple(table.get("commands", ())),
                sections=tuple(table.get("sections", ())),
            )
        )
    return entries


def entry_for_component(name: str, catalogue: list[CatalogueEntry]) -> CatalogueEntry | None:
    for entry in catalogue:
        if name in entry.components:
            return entry
    return None


def check_entry(entry: CatalogueEntry) -> list[str]:
    """What is wrong with a registry table, checked against the installed distribution it names: the
    distribution is installed, declares the entry point, and its plugin loads and provides exactly the
    listed components (and commands) of the listed kinds. Empty when the table is right."""
    from importlib import metadata

    from .plugins import _family_of, load_plugins

    problems = []
    if not entry.entry_point or "=" not in entry.entry_point:
        return [f"entry_point = {entry.entry_point!r}: write it as in the package's metadata, \"NAME = module\""]
    try:
        dist = metadata.distribution(entry.distribution)
    except metadata.PackageNotFoundError:
        return [f"distribution {entry.distribution!r} is not installed here: install it ({entry.install}) and check "
                "again"]
    declared = {f"{ep.name} = {ep.value}" for ep in dist.entry_points if ep.group == "tumorboard"}
    if f"{entry.entry_point_name} = {entry.entry_point_module}" not in declared:
        problems.append(f"{entry.distribution} {dist.version} declares no tumorboard entry point "
                        f"{entry.entry_point!r} (it declares {', '.join(sorted(declared)) or 'none'})")
        return problems
    registry = load_plugins()
    found = [p for p in registry.plugins if p.source == "entry point" and p.name == entry.entry_point_name
             and p.distribution == dist.name]
    if not found:
        return problems + [f"entry point {entry.entry_point_name!r} of {dist.name} did not load (disabled?)"]
    info = found[0]
    if info.status not in ("ok", "unavailable"):
        return problems + [f"the plugin is {info.status}: {info.error}"]
    sections = set(info.sections)
    if sections != set(entry.sections):
        problems.append(f"sections: registry lists {sorted(entry.sections)}, the plugin owns {sorted(sections)}")
    provided = (set(info.components) | set(info.unavailable)) - sections
    if provided != set(entry.components):
        problems.append(f"components: registry lists {sorted(entry.components)}, the plugin registers "
                        f"{sorted(provided)}")
    kinds = {_family_of(cls) for name, claims in registry.claims.items() if name in info.components
             for i, cls in claims if i is info}
    if "register_commands" in info.hooks:
        kinds.add("command")
    if "register_reporters" in info.hooks:
        kinds.add("reporter")
    if "register_analyses" in info.hooks:
        kinds.add("analysis")
    if info.status == "ok" and kinds and kinds != set(entry.kinds):
        problems.append(f"kind: registry lists {', '.join(entry.kinds)}, the plugin provides {', '.join(sorted(kinds))}")
    if entry.api_version and entry.api_version != PLUGIN_API_VERSION:
        problems.append(f"api_version {entry.api_version!r}: this tumorboard implements plugin API {PLUGIN_API_VERSION!r}")
    for field_name in ("summary", "homepage", "install"):
        if not getattr(entry, field_name):
            problems.append(f"{field_name} is empty")
    return problems
