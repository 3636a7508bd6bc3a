"""``[search]``: what a nested hyperparameter search may change, checked before any trial runs.

Keys of ``[search.space]`` are spec paths: ``model.plugin``, ``model.options.C``,
``model.calibration``, ``fusion.plugin``, ``fusion.options.NAME``,
``modality.NAME.plugin``, ``modality.NAME.options.NAME`` (a modality by its
``name``). Values are one of ``log_uniform``, ``uniform``, ``int`` (optionally
``log = true``) or ``choice``. Every key and every value a trial can draw is
validated against the component's own Options here, so a bad space fails in
one pass with file:line, not in trial 17.
"""

from __future__ import annotations

import copy
import functools
import difflib
import json
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_validator

from .components import paths_in_options
from .errors import Problem
from .specproblems import build_component, options_message, unknown_component_message
from .tomlindex import TomlLineIndex

CALIBRATIONS = ("none", "isotonic", "sigmoid")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Distribution(_Strict):
    """One dimension of the search: a range or a list of choices (exactly one of them)."""

    log_uniform: tuple[float, float] | None = Field(None, description="[low, high], sampled on a log scale (low > 0).")
    uniform: tuple[float, float] | None = Field(None, description="[low, high], sampled uniformly.")
    integer: tuple[int, int] | None = Field(None, alias="int", description="[low, high] integers, both included.")
    log: bool = Field(False, description="With int: sample on a log scale (low >= 1).")
    choice: list[Any] | None = Field(None, min_length=1, description="The values to choose from.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Distribution:
        given = [k for k in ("log_uniform", "uniform", "integer", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of log_uniform = [low, high], uniform = [low, high], "
                             "int = [low, high] or choice = [...]")
        if self.log and self.integer is None:
            raise ValueError("log = true goes with int = [low, high] (for floats use log_uniform)")
        for name in ("log_uniform", "uniform", "integer"):
            bounds = getattr(self, name)
            if bounds is not None and not bounds[0] < bounds[1]:
                raise ValueError(f"{'int' if name == 'integer' else name} = {list(bounds)}: low must be below high")
        if self.log_uniform is not None and self.log_uniform[0] <= 0:
            raise ValueError(f"log_uniform = {list(self.log_uniform)}: low must be above 0 (a log scale)")
        if self.log and self.integer is not None and self.integer[0] < 1:
            raise ValueError(f"int = {list(self.integer)} with log = true: low must be at least 1")
        if self.choice is not None:
            encoded = [json.dumps(v, sort_keys=True) for v in self.choice]
            if len(set(encoded)) != len(encoded):
                raise ValueError("choice lists a value twice")
        return self

    def probe_values(self) -> list[Any]:
        """The values that stand for everything a trial can draw: both ends of a range, every choice."""
        if self.choice is not None:
            return list(self.choice)
        return list(self.log_uniform or self.uniform or self.integer)  # type: ignore[arg-type]

    def grid(self) -> list[Any] | None:
        """Every value, for the grid sampler (None for a continuous range)."""
        if self.choice is not None:
            return list(self.choice)
        if self.integer is not None:
            return list(range(self.integer[0], self.integer[1] + 1))
        return None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$")


class SearchSection(_Strict):
    """``[search]``: a nested hyperparameter search (Optuna) inside each outer fold and for the refit."""

    trials: PositiveInt | None = Field(
        None, description="Trials per search (one search per outer fold, one for the refit); default 20, or as "
        "many as fit in `timeout`, or the whole grid.")
    timeout: float | None = Field(
        None, description='Stop starting new trials after this long, e.g. "10m", "90s", "1h" or seconds. A timed '
        "search is not reproducible: the number of trials depends on the machine.")
    metric: str | None = Field(None, description="Inner score to optimise; default the run's primary metric.")
    inner_folds: int = Field(3, ge=2, description="Inner folds, drawn from each outer fold's training patients only.")
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="tpe | random | grid (choices and ints).")
    pruning: bool = Field(True, description="Stop a trial after an inner fold when its running score is below the "
                          "median of earlier trials at that fold (Optuna's median pruner).")
    parallel_trials: PositiveInt = Field(
        4, description="Trials asked of the sampler together and run in parallel on the executor. Results do not "
        "depend on the worker count; more trials per round is more parallel but each is less informed.")
    space: dict[str, Distribution] = Field(min_length=1, description='Spec path -> distribution, e.g. '
                                           '"model.options.C" = { log_uniform = [1e-4, 10.0] }.')
    candidates: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description='Options of a candidate plugin other than the spec\'s own, per component: '
        '[search.candidates."modality.rna"."omics.pca"] layers = [...]. Without it a candidate takes the spec\'s '
        "options that it declares (path, id column, ...).")

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            m = _DURATION.match(value)
            if not m:
                raise ValueError(f"{value!r} is not a duration; write e.g. \"10m\", \"90s\", \"1h\" or seconds")
            unit = (m.group(2) or "s")[0]
            value = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[unit]
        if value is not None and float(value) <= 0:
            raise ValueError("timeout must be positive")
        return value


# --- what the keys point at ----------------------------------------------------


@dataclass
class Slot:
    """One component the search may change: the model, the fusion, or a modality by name."""

    key: str  # "model", "fusion", "modality.rna"
    family: str
    plugin: str  # the spec's own plugin
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)  # plugin -> its base options (as written)
    pins: dict[str, str | None] = field(default_factory=dict)  # plugin -> distribution
    option_fields: dict[str, set[str]] = field(default_factory=dict)  # plugin -> fields of its Options
    paths: list[Path] = field(default_factory=list)  # input files the candidates read (provenance hashes them)


@dataclass(frozen=True)
class Dimension:
    """One searched spec path."""

    key: str
    slot: str
    field: str  # "plugin", "calibration" or an option name
    distribution: Distribution
    owners: tuple[str, ...] = ()  # candidate plugins that have this option


@dataclass
class SearchPlan:
    """A checked ``[search]``: its settings, the components it changes and its dimensions."""

    section: SearchSection
    slots: dict[str, Slot]
    dimensions: list[Dimension]
    metric: str
    greater_is_better: bool

    @property
    def trials(self) -> int | None:
        """Trials per search (None: until the timeout)."""
        if self.section.trials is not None:
            return self.section.trials
        if self.section.sampler == "grid":
            return self.grid_size
        return None if self.section.timeout is not None else 20

    @functools.cached_property
    def grid_size(self) -> int:
        return len(grid_points(self, 0))


KEY_FORMS = ("model.plugin, model.options.NAME, model.calibration, fusion.plugin, fusion.options.NAME, "
             "modality.NAME.plugin or modality.NAME.options.NAME")


def _parse_key(key: str, modality_names: list[str]) -> tuple[str, str] | str:
    """(slot, field) for a spec path, or the reason it is not one."""
    parts = key.split(".")
    head = parts[0]
    if head == "modality":
        if len(parts) < 3:
            return "a modality key names the modality: modality.NAME.plugin or modality.NAME.options.NAME"
        if parts[1] not in modality_names:
            close = difflib.get_close_matches(parts[1], modality_names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return f"no modality named {parts[1]!r}; {hint}the spec's modalities are {', '.join(modality_names)}"
        slot, rest = f"modality.{parts[1]}", parts[2:]
    elif head in ("model", "fusion"):
        slot, rest = head, parts[1:]
    else:
        return f"not a spec path the search can change; use {KEY_FORMS}"
    if rest == ["plugin"]:
        return slot, "plugin"
    if rest == ["calibration"] and slot == "model":
        return slot, "calibration"
    if len(rest) == 2 and rest[0] == "options" and rest[1]:
        return slot, rest[1]
    return f"{key!r} is not one of {KEY_FORMS} (one option per key)"


def check_search(spec, registry, catalogue, index: TomlLineIndex, base_dir: Path, check_files: bool,
                 problems: list[Problem]) -> SearchPlan | None:
    """Check ``[search]`` against the installed components; problems are appended (file:line)."""
    from .metrics import DEFAULT_METRICS, GREATER_IS_BETTER, METRICS

    section: SearchSection = spec.search
    start = len(problems)

    def problem(loc: tuple, message: str, value: Any = None) -> None:
        problems.append(Problem(".".join(loc[:2]) + (f'."{loc[2]}"' if len(loc) > 2 else "") +
                                "".join(f".{p}" for p in loc[3:]), message, index.line_of(loc), value,
                                value is not None))

    task = spec.run.task
    metric = section.metric or (spec.evaluation.metrics or list(DEFAULT_METRICS[task]))[0]
    if metric not in METRICS[task]:
        close = difflib.get_close_matches(metric, list(METRICS[task]), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problem(("search", "metric"), f"not a {task} metric; {hint}choose from {', '.join(METRICS[task])}", metric)

    modality_names = [m.name for m in spec.modality]
    specs = {"model": ("model", spec.model), "fusion": ("fusion", spec.fusion),
             **{f"modality.{m.name}": ("modality", m) for m in spec.modality}}
    slots: dict[str, Slot] = {}
    parsed: list[tuple[str, str, str, Distribution]] = []
    for key, dist in section.space.items():
        where = _parse_key(key, modality_names)
        if isinstance(where, str):
            problem(("search", "space", key), where)
            continue
        slot_key, field_name = where
        family, cspec = specs[slot_key]
        slots.setdefault(slot_key, Slot(slot_key, family, cspec.plugin))
        parsed.append((key, slot_key, field_name, dist))

    # which plugins each slot may hold, and each one's base options
    for key, slot_key, field_name, dist in parsed:
        if field_name != "plugin":
            continue
        if dist.choice is None or not all(isinstance(v, str) for v in dist.choice):
            problem(("search", "space", key), 'a plugin is chosen from a list of names: { choice = ["a", "b"] }')
            continue
        slots[slot_key].candidates = {name: {} for name in dist.choice}
    for slot_key, slot in slots.items():
        family, cspec = specs[slot_key]
        if not slot.candidates:
            slot.candidates = {slot.plugin: {}}
        given = section.candidates.get(slot_key, {})
        for plugin in list(slot.candidates):
            pin = cspec.distribution if plugin == slot.plugin else None
            cls = registry.get(family, plugin, pin)
            loc = ("search", "space", f"{slot_key}.plugin")
            if cls is None:
                problem(loc, unknown_component_message(plugin, family, registry, catalogue, pin), plugin)
                continue
            fields = set(cls.Options.model_fields)
            slot.option_fields[plugin] = fields
            slot.pins[plugin] = pin
            if plugin in given:
                options = copy.deepcopy(given[plugin])
            elif plugin == slot.plugin:
                options = copy.deepcopy(cspec.options)
            else:  # what the spec says that this candidate also declares: its input path, id column, ...
                options = {k: copy.deepcopy(v) for k, v in cspec.options.items() if k in fields}
            slot.candidates[plugin] = options
            component = build_component(cls, options, base_dir, check_files, registry)
            if isinstance(component, ValidationError):
                fix = (f'; give its options in [search.candidates."{slot_key}"."{plugin}"]' if plugin not in given
                       else "")
                problem(("search", "candidates", slot_key) if plugin in given else loc,
                        f"candidate {plugin!r} for {slot_key}: {options_message(component)}{fix}", plugin)
            elif component is not None:
                slot.paths += paths_in_options(component)
            if component is not None and not isinstance(component, ValidationError) and task not in component.tasks:
                problem(loc, f"{plugin} does not support task {task!r}; it supports "
                        f"{', '.join(sorted(component.tasks))}", plugin)
    for slot_key, by_plugin in section.candidates.items():
        for plugin in by_plugin:
            if slot_key not in slots or plugin not in slots[slot_key].candidates:
                problem(("search", "candidates", slot_key), f"options for {plugin!r}, which the search never picks for "
                        f"{slot_key}; list it in \"{slot_key}.plugin\" = {{ choice = [...] }} or remove this table")

    dimensions = []
    for key, slot_key, field_name, dist in parsed:
        slot = slots[slot_key]
        loc = ("search", "space", key)
        if field_name == "plugin":
            dimensions.append(Dimension(key, slot_key, field_name, dist, tuple(slot.candidates)))
            continue
        if field_name == "calibration":
            bad = [v for v in dist.probe_values() if v not in CALIBRATIONS]
            if dist.choice is None or bad:
                problem(loc, f"model.calibration is chosen from {list(CALIBRATIONS)}: {{ choice = [...] }}")
            elif task != "binary":
                problem(loc, f"model.calibration calibrates binary probabilities; this is a {task} task")
            dimensions.append(Dimension(key, slot_key, field_name, dist))
            continue
        owners = tuple(p for p, fields in slot.option_fields.items() if field_name in fields)
        if not owners:
            known = sorted(set().union(*slot.option_fields.values())) if slot.option_fields else []
            close = difflib.get_close_matches(field_name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problem(loc, f"no option {field_name!r} in {', '.join(slot.option_fields) or slot.plugin}; {hint}"
                    f"options are {', '.join(known)}")
            continue
        for plugin in owners:
            cls = registry.get(slot.family, plugin, slot.pins.get(plugin))
            for value in dist.probe_values():
                options = {**slot.candidates[plugin], field_name: value}
                result = build_component(cls, options, base_dir, check_files, registry)
                if isinstance(result, ValidationError):
                    problem(loc, f"{plugin} refuses {field_name} = {value!r}: {options_message(result)}")
                    break
        dimensions.append(Dimension(key, slot_key, field_name, dist, owners))

    if section.sampler == "grid":
        continuous = [d.key for d in dimensions if d.distribution.grid() is None]
        if continuous:
            problem(("search", "sampler"), f"the grid sampler needs choices or int ranges; {', '.join(continuous)} "
                    "is a continuous range: give its values as choice = [...] or use sampler = \"tpe\"", "grid")
    if len(problems) > start:
        return None
    return SearchPlan(section, slots, dimensions, metric, GREATER_IS_BETTER.get(metric, True))


def grid_points(plan: SearchPlan, seed: int) -> list[dict[str, Any]]:
    """Every distinct configuration of a grid, in a seeded random order (so that ``trials`` below the grid's
    size samples it evenly). Options of a plugin the point does not choose are left out, which merges
    points that differ only there.

    Optuna's GridSampler stops the study from inside ``tell`` when the grid is exhausted, which its
    ask-and-tell interface refuses; the points are enqueued as fixed trials instead.
    """
    dims = plan.dimensions
    seen: dict[str, dict[str, Any]] = {}
    for values in itertools.product(*(d.distribution.grid() for d in dims)):  # type: ignore[misc]
        point = dict(zip((d.key for d in dims), values, strict=True))
        chosen = {key: slot.plugin for key, slot in plan.slots.items()}
        chosen.update({d.slot: point[d.key] for d in dims if d.field == "plugin"})
        point = {d.key: point[d.key] for d in dims
                 if d.field in ("plugin", "calibration") or chosen[d.slot] in d.owners}
        seen.setdefault(json.dumps(point, sort_keys=True), point)
    points = list(seen.values())
    order = np.random.default_rng(seed).permutation(len(points))
    return [points[i] for i in order]


def configuration(plan: SearchPlan, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each changed component's plugin and options (as a spec would write them) for a trial's params."""
    out: dict[str, dict[str, Any]] = {}
    for slot_key, slot in plan.slots.items():
        plugin = params.get(f"{slot_key}.plugin", slot.plugin)
        options = copy.deepcopy(slot.candidates[plugin])
        for d in plan.dimensions:
            if d.slot == slot_key and d.field not in ("plugin", "calibration") and d.key in params:
                options[d.field] = params[d.key]
        out[slot_key] = {"plugin": plugin, "distribution": slot.pins.get(plugin), "options": options}
    return out

