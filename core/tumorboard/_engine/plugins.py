"""Plugin discovery and the component registry.

Plugins come from the ``tumorboard`` entry-point group (read with the standard
library's ``importlib.metadata``), from files a run spec names beside itself,
and from modules or files named on the command line. Each entry point is
loaded on its own: pluggy's ``load_setuptools_entrypoints`` stops at the first
plugin that fails to import, and one broken plugin must not take the others
down.

Nothing here ever adds a folder to ``sys.path``: a data folder, a spec's folder
or a run directory may hold files named like real modules (``cython.py``,
``pyarrow.py``) that a later, unrelated import would pick up. Local plugin
files are loaded by location instead (docs/security.md).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Literal

import pluggy
from pydantic import BaseModel

from . import hookspecs
from .components import FAMILIES, NAME_PATTERN, Component
from .data import TASKS
from .analyses import analysis_problems
from .reporters import reporter_problems

ENTRY_POINT_GROUP = "tumorboard"
DISABLE_ENV = "TUMORBOARD_DISABLE_PLUGINS"
# a local plugin file runs under this prefix in sys.modules, so it can never
# stand in for a real module of the same name
LOCAL_PREFIX = "tumorboard_local__"

# families whose component names must start with a fixed prefix; modality
# names start with their data family instead (tabular., ehr., omics., imaging.)
NAME_PREFIX = {"model": "model.", "fusion": "fusion.", "explainer": "explain."}

# feature hooks whose implementations register classes: hook -> (problems of a class, the attribute that names
# it, what it is called in messages)
CLASS_HOOKS = {
    "register_reporters": (reporter_problems, "name", "reporter"),
    "register_analyses": (analysis_problems, "section", "spec section"),
}

Status = Literal["ok", "broken", "disabled", "empty", "unavailable"]


@dataclass
class PluginInfo:
    """One plugin as found: where it came from, what it registered, or why it broke."""

    name: str
    module: str
    source: Literal["entry point", "module", "file"]
    distribution: str | None = None
    version: str | None = None
    status: Status = "ok"
    hooks: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    error: str | None = None
    attempted: list[str] = field(default_factory=list)
    """Component names the plugin tried to register (also when it broke)."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """Components registered but not usable here: name -> what is missing and how to install it."""
    sections: list[str] = field(default_factory=list)
    """Spec sections the plugin's analyses own (``register_analyses``)."""

    @property
    def key(self) -> tuple[str, str]:
        """A plugin's identity: (distribution, entry-point name); local plugins by source and module."""
        return (self.distribution or f"({self.source})", self.name if self.source == "entry point" else self.module)

    @property
    def owner_label(self) -> str:
        """What a spec's ``distribution = "..."`` pins this plugin's components by."""
        return self.distribution or self.module

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
            "unavailable": self.unavailable,
        }


@dataclass
class PluginRegistry:
    """Every component class that loaded, by family and name, and every plugin's report.

    A name registered by two distributions is a conflict: ``get`` answers None
    for it until the spec pins one (``distribution = "..."``); ``conflicts``
    lists who claims it. Nothing is ever chosen by load order.
    """

    plugins: list[PluginInfo] = field(default_factory=list)
    components: dict[str, dict[str, type[Component]]] = field(
        default_factory=lambda: {family: {} for family in FAMILIES}
    )
    owner: dict[str, PluginInfo] = field(default_factory=dict)
    claims: dict[str, list[tuple[PluginInfo, type[Component]]]] = field(default_factory=dict)
    """Every (plugin, class) that registered each name, conflicting or not."""
    feature_hooks: dict[str, list[tuple[PluginInfo, Callable]]] = field(default_factory=dict)
    """Implementations of the feature hooks (``register_commands``) by loaded plugins, in load order."""
    extras: dict[str, dict[str, type]] = field(default_factory=lambda: {hook: {} for hook in CLASS_HOOKS})
    """Classes of the feature hooks that register them: hook -> name (reporters) or section (analyses) -> class."""
    unavailable_extras: dict[str, dict[str, str]] = field(default_factory=lambda: {hook: {} for hook in CLASS_HOOKS})
    """Those whose library is missing here: hook -> name -> what is missing and the install command."""

    @property
    def reporters(self) -> dict[str, type]:
        """Reporter classes (``register_reporters``) by name."""
        return self.extras["register_reporters"]

    @property
    def unavailable_reporters(self) -> dict[str, str]:
        return self.unavailable_extras["register_reporters"]

    @property
    def analyses(self) -> dict[str, type]:
        """Analysis classes (``register_analyses``) by the spec section they own."""
        return self.extras["register_analyses"]

    @property
    def unavailable_analyses(self) -> dict[str, str]:
        return self.unavailable_extras["register_analyses"]

    def get(self, family: str, name: str, distribution: str | None = None) -> type[Component] | None:
        if distribution is not None:
            for info, cls in self.claims.get(name, []):
                if info.owner_label == distribution and _family_of(cls) == family:
                    return cls
            return None
        return self.components[family].get(name)

    def names(self, family: str) -> list[str]:
        return sorted(self.components[family])

    def find_family(self, name: str) -> str | None:
        for family, members in self.components.items():
            if name in members:
                return family
        for _, cls in self.claims.get(name, []):
            return _family_of(cls)
        return None

    @property
    def conflicts(self) -> dict[str, list[PluginInfo]]:
        """Component names claimed by more than one distribution, with the claimants."""
        return {name: [info for info, _ in found] for name, found in self.claims.items() if len(found) > 1}

    @property
    def unavailable(self) -> dict[str, tuple[PluginInfo, str]]:
        """Components (or whole plugins, by entry-point name) that need an optional dependency not installed
        here: name -> (plugin, what is missing and the install command)."""
        found: dict[str, tuple[PluginInfo, str]] = {}
        for info in self.plugins:
            for name, why in info.unavailable.items():
                found[name] = (info, why)
        return found

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "broken"]

    @property
    def empty(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "empty"]

    def summary_line(self) -> str | None:
        """One line for `spec validate` and `run` when some plugin is broken, empty or in conflict."""
        parts = []
        if self.broken:
            parts.append(f"{len(self.broken)} broken plugin{'s' if len(self.broken) > 1 else ''} "
                         f"({', '.join(p.name for p in self.broken)})")
        if self.empty:
            parts.append(f"{len(self.empty)} plugin{'s' if len(self.empty) > 1 else ''} registering nothing "
                         f"({', '.join(p.name for p in self.empty)})")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} component name{'s' if len(self.conflicts) > 1 else ''} "
                         f"claimed by two distributions ({', '.join(sorted(self.conflicts))})")
        return "; ".join(parts) + "; see `tumorboard plugins`" if parts else None


def _family_of(cls: type) -> str:
    for family, base in FAMILIES.items():
        if inspect.isclass(cls) and issubclass(cls, base):
            return family
    return ""


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
            f"{label}.Options must reject unknown keys: derive it from tumorboard.api.Options (or set "
            "model_config = ConfigDict(extra='forbid'))"
        )
    tasks = getattr(cls, "tasks", None)
    if isinstance(tasks, frozenset | set) and (not tasks or not tasks <= set(TASKS)):
        problems.append(f"{label}.tasks = {set(tasks) or '{}'}: declare the run tasks it supports, a non-empty set of "
                        f"{', '.join(TASKS)}")
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
    seen: set[tuple[str, str, str]] = set()
    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        # the same distribution can be visible twice (an editable install plus a
        # build folder on sys.path); count it once
        dist = ep.dist.name if ep.dist is not None else ""
        key = (dist, ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            found.append(ep)

    # a stable order for reports; it decides nothing (conflicts are reported, not resolved)
    def order(ep: metadata.EntryPoint) -> tuple[bool, str, str]:
        dist = ep.dist.name if ep.dist is not None else ""
        return (dist != "tumorboard", dist, ep.name)

    return sorted(found, key=order)


def _short_error(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


def _one_line(err: BaseException) -> str:
    """pluggy's validation messages span several lines; the last one says what is wrong."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def resolve_local_plugin(name: str, folder: Path) -> Path | None:
    """The file a spec's ``[plugins] modules`` entry names: NAME.py or NAME/__init__.py in ``folder``
    (or a relative path ending in .py); None when there is none."""
    if name.endswith(".py") or "/" in name or os.sep in name:
        path = (folder / name).resolve()
        return path if path.is_file() or (path / "__init__.py").is_file() else None
    rel = Path(*name.split("."))
    for candidate in (folder / rel.with_suffix(".py"), folder / rel / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def import_file(path: Path) -> ModuleType:
    """Import one plugin file (or package folder) by its location, never by searching sys.path."""
    path = Path(path)
    package = path.name == "__init__.py" or path.is_dir()
    if path.is_dir():
        path = path / "__init__.py"
    stem = path.parent.name if package else path.stem
    module_name = LOCAL_PREFIX + "".join(c if c.isalnum() else "_" for c in stem)
    spec = importlib.util.spec_from_file_location(
        module_name, path, submodule_search_locations=[str(path.parent)] if package else None
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # pydantic and dataclasses look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


class _Loader:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = PluginRegistry()
        self.disabled = disabled_names()

    def is_disabled(self, *names: str | None) -> bool:
        return any(n in self.disabled for n in names if n)

    def _add(self, info: PluginInfo) -> bool:
        """Record a plugin; False when it is disabled or already loaded under the same identity."""
        if any(p.key == info.key for p in self.registry.plugins):
            return False
        self.registry.plugins.append(info)
        if self.is_disabled(info.name, info.module, info.distribution):
            info.status = "disabled"
            info.error = f"disabled by {DISABLE_ENV}"
            return False
        return True

    def load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        info = PluginInfo(ep.name, ep.value, "entry point", dist, version)
        if not self._add(info):
            return
        try:
            module = ep.load()
        except ModuleNotFoundError as err:
            missing = (err.name or "").split(".")[0]
            extra = optional_requirement(ep.dist, missing)
            if extra is not None:
                # an optional dependency the distribution declares under an extra, not a broken plugin: how
                # to get it is the catalogue's `install` (pip install "tumorboard[imaging]"), shown by
                # `tumorboard plugins`
                info.status = "unavailable"
                info.error = f"needs {missing!r} (the distribution's [{extra}] extra), which is not installed"
                return
            self._broken(info, f"failed to import: {_short_error(err)}")
            return
        except Exception as err:  # a broken plugin is reported, never fatal
            self._broken(info, f"failed to import: {_short_error(err)}")
            return
        self._register(info, module)

    def load_module(self, module_name: str) -> None:
        """A module named on the command line: the user's choice, imported by name."""
        info = PluginInfo(module_name, module_name, "module")
        if not self._add(info):
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

    def load_file(self, path: Path) -> None:
        """A local plugin file (or package folder), loaded by location."""
        path = Path(path).resolve()
        name = path.parent.name if path.name == "__init__.py" else path.stem
        info = PluginInfo(name, str(path), "file")
        if not self._add(info):
            return
        try:
            module = import_file(path)
        except Exception as err:
            self._broken(info, f"failed to import: {_short_error(err)}")
            return
        self._register(info, module)

    def _broken(self, info: PluginInfo, reason: str) -> None:
        info.status = "broken"
        info.error = reason

    def _unknown_hooks(self, module: ModuleType) -> list[str]:
        """Functions marked ``@hookimpl`` whose name is no tumorboard hook (a typo never passes silently)."""
        problems = []
        known = [*hookspecs.HOOKS, *hookspecs.FEATURE_HOOKS]
        for attr in dir(module):
            if attr in known:
                continue
            try:
                opts = self.pm.parse_hookimpl_opts(module, attr)
            except Exception:  # an attribute that cannot be inspected is not a hook
                continue
            if opts is not None:
                close = difflib.get_close_matches(attr, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; tumorboard's hooks are {', '.join(known)}"
                problems.append(f"implements unknown hook {attr!r}{hint}")
        return problems

    def _register(self, info: PluginInfo, module: ModuleType) -> None:
        problems = self._unknown_hooks(module)
        if problems:
            self._broken(info, "; ".join(problems))
            return
        try:
            self.pm.register(module, name=f"{info.key[0]}:{info.key[1]}")
        except (ValueError, pluggy.PluginValidationError) as err:
            self._broken(info, f"invalid hook implementation: {_one_line(err)}")
            return
        pending: list[tuple[str, type[Component]]] = []
        for hook_name, family in hookspecs.HOOKS.items():
            impls = [impl for impl in getattr(self.pm.hook, hook_name).get_hookimpls() if impl.plugin is module]
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
        features = []
        # classes of the feature hooks that register things (reporters, analyses): hook -> classes
        extras: dict[str, list[type]] = {hook: [] for hook in CLASS_HOOKS}
        for hook_name in hookspecs.FEATURE_HOOKS:
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not module:
                    continue
                info.hooks.append(hook_name)
                if hook_name not in CLASS_HOOKS:
                    features.append((hook_name, impl.function))
                    continue
                try:  # reporters and analyses register classes, like components
                    impl.function(**{arg: extras[hook_name].append for arg in impl.argnames if arg == "register"})
                except Exception as err:
                    problems.append(f"{hook_name} raised {_short_error(err)}")
        for hook_name, classes in extras.items():
            check, key, what = CLASS_HOOKS[hook_name]
            for cls in classes:
                problems.extend(check(cls))
                name = getattr(cls, key, "")
                if name in self.registry.extras[hook_name] or name in self.registry.unavailable_extras[hook_name]:
                    problems.append(f"{what} {name!r} is already registered by another plugin")
        info.attempted = [str(getattr(cls, "name", "")) for _, cls in pending]
        for family, cls in pending:
            problems.extend(component_problems(cls, family))
            name = getattr(cls, "name", "")
            for other, _ in self.registry.claims.get(name, []):
                if other.owner_label == info.owner_label:
                    problems.append(f"{name!r} is already registered by {describe(other)} of the same distribution")
        dupes = sorted({n for n in info.attempted if info.attempted.count(n) > 1})
        if dupes:
            problems.append(f"registers {', '.join(map(repr, dupes))} more than once")
        if problems:
            self.pm.unregister(module)
            self._broken(info, "; ".join(problems))
            return
        for hook_name, function in features:
            self.registry.feature_hooks.setdefault(hook_name, []).append((info, function))
        for hook_name, classes in extras.items():
            _, key, _ = CLASS_HOOKS[hook_name]
            for cls in classes:
                name = getattr(cls, key)
                missing = [m for m in cls.requires if not module_available(m)]
                if missing:
                    hint = cls.install or f"pip install {' '.join(missing)}"
                    info.unavailable[name] = f"needs {', '.join(missing)} (not installed): {hint}"
                    self.registry.unavailable_extras[hook_name][name] = info.unavailable[name]
                else:
                    self.registry.extras[hook_name][name] = cls
                    # reporters are listed with the components; sections by themselves
                    (info.components if hook_name == "register_reporters" else info.sections).append(name)
        if not pending and (features or any(extras.values())):
            return
        if not pending:
            info.status = "empty"
            info.error = ("registers no component" if info.hooks else
                          f"implements none of tumorboard's hooks ({', '.join(hookspecs.HOOKS)})")
            self.pm.unregister(module)
            return
        usable = []
        for family, cls in pending:
            missing = [m for m in getattr(cls, "requires", ()) if not module_available(m)]
            if missing:
                hint = getattr(cls, "install", "") or f"pip install {' '.join(missing)}"
                info.unavailable[cls.name] = f"needs {', '.join(missing)} (not installed): {hint}"
            else:
                usable.append((family, cls))
        if not usable:
            info.status = "unavailable"
            info.error = "; ".join(f"{n} {why}" for n, why in info.unavailable.items())
            self.pm.unregister(module)
            return
        for family, cls in usable:
            claims = self.registry.claims.setdefault(cls.name, [])
            claims.append((info, cls))
            info.components.append(cls.name)
            if len(claims) == 1:
                self.registry.components[family][cls.name] = cls
                self.registry.owner[cls.name] = info
            else:
                # two distributions claim the name: neither wins until a spec pins one
                self.registry.components[family].pop(cls.name, None)
                self.registry.owner.pop(cls.name, None)


def unavailable_here(registry: PluginRegistry, catalogue: Sequence) -> list[dict[str, object]]:
    """Built-in or installed plugins and components that need an optional dependency missing here, each with
    the command that installs it: whole plugins whose import needs one (the catalogue's ``install``) and single
    components whose ``requires`` names one."""
    rows: list[dict[str, object]] = []
    for info in registry.plugins:
        if info.status == "unavailable" and not info.unavailable:
            entry = next((e for e in catalogue if e.entry_point_name == info.name
                          and e.distribution == info.distribution), None)
            rows.append({"plugin": info.name, "distribution": info.distribution,
                         "components": list(entry.components) if entry else [], "reason": info.error or "",
                         "install": entry.install if entry else f"pip install {info.distribution or info.module}"})
        for name, why in info.unavailable.items():
            reason, _, hint = why.partition(": ")
            rows.append({"plugin": info.name, "distribution": info.distribution, "components": [name],
                         "reason": reason, "install": hint})
    return rows


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "", name).lower()


def optional_requirement(dist: metadata.Distribution | None, module: str) -> str | None:
    """The extra of ``dist`` that would install top-level module ``module`` (matched by normalised name,
    e.g. SimpleITK and ``simpleitk>=2.3; extra == "imaging"``), or None when it declares none: then a plugin
    failing to import it is broken, not merely missing an optional dependency."""
    if dist is None or not module:
        return None
    for requirement in dist.requires or []:
        marker = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
        if marker and _normalise(re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0]) == _normalise(module):
            return marker.group(1)
    return None


def module_available(name: str) -> bool:
    """Whether a top-level module can be imported here, without importing it."""
    if name in sys.modules:
        return sys.modules[name] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def describe(info: PluginInfo) -> str:
    dist = f"distribution {info.distribution!r}" if info.distribution else f"local {info.source} {info.module!r}"
    return f"plugin {info.name!r} ({dist})"


def _distribution_of(module: ModuleType) -> str | None:
    top = module.__name__.split(".")[0]
    dists = metadata.packages_distributions().get(top)
    return dists[0] if dists else None


def split_command_line_plugins(values: Iterable[str]) -> tuple[list[str], list[Path]]:
    """``--plugin`` values: a path to a .py file or a package folder loads by location, anything else
    is a module name imported as the user would import it."""
    modules: list[str] = []
    files: list[Path] = []
    for value in values:
        path = Path(value)
        if value.endswith(".py") or os.sep in value or "/" in value or (path.is_dir() and (path / "__init__.py").is_file()):
            files.append(path)
        else:
            modules.append(value)
    return modules, files


def load_plugins(modules: Sequence[str] | Iterable[str] = (), files: Sequence[Path] | Iterable[Path] = ()) -> PluginRegistry:
    """Load every installed plugin, then modules named by the user and local plugin files.

    ``modules`` are imported by name (only names the user typed: ``--plugin``);
    ``files`` load by location (a spec's ``[plugins] modules``, resolved in the
    spec's folder). No folder is ever added to ``sys.path``. Never raises for a
    plugin's fault: broken plugins are listed in the returned registry with
    their distribution and reason.
    """
    loader = _Loader()
    for ep in _entry_points():
        loader.load_entry_point(ep)
    for name in modules:
        loader.load_module(name)
    for path in files:
        loader.load_file(Path(path))
    return loader.registry


def conflict_message(name: str, registry: PluginRegistry) -> str | None:
    """How to choose between the distributions that claim ``name`` (None when only one does)."""
    claimants = registry.conflicts.get(name)
    if not claimants:
        return None
    who = " and ".join(f"{describe(p)}" for p in claimants)
    pins = " or ".join(f'distribution = "{p.owner_label}"' for p in claimants)
    return (f"{name!r} is registered by two distributions, {who}; tumorboard never picks one silently: "
            f"add {pins} to this table (or uninstall one)")


__all__ = [
    "ENTRY_POINT_GROUP", "PluginInfo", "PluginRegistry", "component_problems", "conflict_message",
    "describe", "import_file", "load_plugins", "module_available", "unavailable_here", "resolve_local_plugin", "split_command_line_plugins",
]
