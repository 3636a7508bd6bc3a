"""Plugin discovery and the component registry.

Plugins come from the ``tumorboard`` entry-point group (read with the standard
library's ``importlib.metadata``) and from module names given in a spec or on
the command line. Each entry point is loaded on its own: pluggy's
``load_setuptools_entrypoints`` stops at the first plugin that fails to import,
and one broken plugin must not take the others down.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Literal

import pluggy
from pydantic import BaseModel

from . import hookspecs
from .components import FAMILIES, NAME_PATTERN, Component

ENTRY_POINT_GROUP = "tumorboard"
DISABLE_ENV = "TUMORBOARD_DISABLE_PLUGINS"

# families whose component names must start with a fixed prefix; modality
# names start with their data family instead (tabular., ehr., omics., imaging.)
NAME_PREFIX = {"model": "model.", "fusion": "fusion.", "explainer": "explain."}


@dataclass
class PluginInfo:
    """One plugin as found: where it came from, what it registered, or why it broke."""

    name: str
    module: str
    source: Literal["entry point", "module"]
    distribution: str | None = None
    version: str | None = None
    status: Literal["ok", "broken", "disabled"] = "ok"
    hooks: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "module": self.module,
            "source": self.source,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "hooks": self.hooks,
            "components": self.components,
            "error": self.error,
        }


@dataclass
class PluginRegistry:
    """Every component class that loaded, by family and name, and every plugin's report."""

    plugins: list[PluginInfo] = field(default_factory=list)
    components: dict[str, dict[str, type[Component]]] = field(
        default_factory=lambda: {family: {} for family in FAMILIES}
    )
    owner: dict[str, PluginInfo] = field(default_factory=dict)

    def get(self, family: str, name: str) -> type[Component] | None:
        return self.components[family].get(name)

    def names(self, family: str) -> list[str]:
        return sorted(self.components[family])

    def find_family(self, name: str) -> str | None:
        for family, members in self.components.items():
            if name in members:
                return family
        return None

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "broken"]


def component_problems(cls: object, family: str) -> list[str]:
    """Why a class cannot be registered as a component of ``family`` (empty when it can)."""
    base = FAMILIES[family]
    label = getattr(cls, "__qualname__", repr(cls))
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        return [f"{label} is not a subclass of tumorboard.api.{base.__name__}"]
    problems = []
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(f"{label}.name = {name!r} is not of the form 'family.variant' (lower case)")
    elif family in NAME_PREFIX and not name.startswith(NAME_PREFIX[family]):
        problems.append(f"{label}.name = {name!r}: {family} names start with {NAME_PREFIX[family]!r}")
    options = getattr(cls, "Options", None)
    if not (inspect.isclass(options) and issubclass(options, BaseModel)):
        problems.append(f"{label}.Options must be a pydantic BaseModel subclass")
    elif options.model_config.get("extra") != "forbid":
        problems.append(
            f"{label}.Options must reject unknown keys: set model_config = ConfigDict(extra='forbid')"
        )
    if inspect.isabstract(cls):
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        problems.append(f"{label} does not implement {', '.join(missing)}")
    if not (cls.__doc__ or "").strip():
        problems.append(f"{label} has no docstring (it is the summary `tumorboard plugins` shows)")
    return problems


def disabled_names() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        # the same distribution can be visible twice (an editable install plus a
        # build folder on sys.path); count it once
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            found.append(ep)
    # a stable order decides who keeps a duplicated name: tumorboard's own
    # distribution first, then the others by distribution and entry-point name
    def order(ep: metadata.EntryPoint) -> tuple[bool, str, str]:
        dist = ep.dist.name if ep.dist is not None else ""
        return (dist != "tumorboard", dist, ep.name)

    return sorted(found, key=order)


def _short_error(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


class _Loader:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = PluginRegistry()
        self.disabled = disabled_names()

    def is_disabled(self, *names: str | None) -> bool:
        return any(n in self.disabled for n in names if n)

    def load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        info = PluginInfo(ep.name, ep.value, "entry point", dist, version)
        self.registry.plugins.append(info)
        if self.is_disabled(ep.name, ep.value, dist):
            info.status = "disabled"
            info.error = f"disabled by {DISABLE_ENV}"
            return
        try:
            module = ep.load()
        except Exception as err:  # a broken plugin is reported, never fatal
            self._broken(info, f"failed to import: {_short_error(err)}")
            return
        self._register(info, module)

    def load_module(self, module_name: str) -> None:
        if any(p.module == module_name for p in self.registry.plugins):
            return
        info = PluginInfo(module_name, module_name, "module")
        self.registry.plugins.append(info)
        if self.is_disabled(module_name):
            info.status = "disabled"
            info.error = f"disabled by {DISABLE_ENV}"
            return
        try:
            module = importlib.import_module(module_name)
        except Exception as err:
            self._broken(info, f"failed to import: {_short_error(err)}")
            return
        info.distribution = _distribution_of(module)
        if info.distribution:
            try:
                info.version = metadata.version(info.distribution)
            except metadata.PackageNotFoundError:
                pass
        self._register(info, module)

    def _broken(self, info: PluginInfo, reason: str) -> None:
        info.status = "broken"
        info.error = reason

    def _register(self, info: PluginInfo, module: ModuleType) -> None:
        try:
            self.pm.register(module, name=f"{info.source}:{info.name}")
        except (ValueError, pluggy.PluginValidationError) as err:
            self._broken(info, f"invalid hook implementation: {err}")
            return
        pending: list[tuple[str, type[Component]]] = []
        problems: list[str] = []
        for hook_name, family in hookspecs.HOOKS.items():
            impls = [
                impl
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls()
                if impl.plugin is module
            ]
            for impl in impls:
                info.hooks.append(hook_name)

                def register(cls: type, _family: str = family) -> None:
                    pending.append((_family, cls))

                # pass only the arguments the implementation declares, so that
                # hooks gaining arguments later keep old plugins working
                kwargs = {arg: register for arg in impl.argnames if arg == "register"}
                try:
                    impl.function(**kwargs)
                except Exception as err:
                    problems.append(f"{hook_name} raised {_short_error(err)}")
        for family, cls in pending:
            for problem in component_problems(cls, family):
                problems.append(problem)
            name = getattr(cls, "name", "")
            if name in self.registry.owner:
                other = self.registry.owner[name]
                problems.append(
                    f"duplicate component name {name!r}: already registered by "
                    f"{_describe(other)}; this one comes from {_describe(info)}"
                )
        names = [getattr(cls, "name", "") for _, cls in pending]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"registers {', '.join(map(repr, dupes))} more than once")
        if problems:
            self.pm.unregister(module)
            self._broken(info, "; ".join(problems))
            return
        for family, cls in pending:
            self.registry.components[family][cls.name] = cls
            self.registry.owner[cls.name] = info
            info.components.append(cls.name)


def _describe(info: PluginInfo) -> str:
    dist = f"distribution {info.distribution!r}" if info.distribution else "no distribution"
    return f"plugin {info.name!r} ({dist}, module {info.module!r})"


def _distribution_of(module: ModuleType) -> str | None:
    top = module.__name__.split(".")[0]
    dists = metadata.packages_distributions().get(top)
    return dists[0] if dists else None


def load_plugins(
    modules: Sequence[str] | Iterable[str] = (), search_paths: Sequence[os.PathLike | str] = ()
) -> PluginRegistry:
    """Load every installed plugin plus local ones named by module.

    ``search_paths`` (for example the spec's folder) are put on ``sys.path`` so a
    plugin module kept beside a spec loads without being installed. Never raises
    for a plugin's fault: broken plugins are listed in the returned registry with
    their distribution and reason.
    """
    for path in search_paths:
        path = os.fspath(path)
        if path not in sys.path:
            sys.path.append(path)
    loader = _Loader()
    for ep in _entry_points():
        loader.load_entry_point(ep)
    for name in modules:
        loader.load_module(name)
    return loader.registry
