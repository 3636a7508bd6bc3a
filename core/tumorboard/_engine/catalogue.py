"""registry.toml: the catalogue of known plugins, installed or not.

It lets ``tumorboard plugins`` list what could be installed, and lets an
unknown ``plugin = "..."`` in a spec answer with the install command.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

REGISTRY_ENV = "TUMORBOARD_REGISTRY"


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


def load_catalogue(path: Path | None = None) -> list[CatalogueEntry]:
    path = path or registry_path()
    if path is None or not path.is_file():
        return []
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
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
            )
        )
    return entries


def entry_for_component(name: str, catalogue: list[CatalogueEntry]) -> CatalogueEntry | None:
    for entry in catalogue:
        if name in entry.components:
            return entry
    return None
